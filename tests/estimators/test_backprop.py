import jax
import jax.numpy as jnp
import numpy as np

from metalearn import estimators, experiment, objectives
from metalearn.unroll import unroll


def _parts(tiny_config):
  family = experiment.make_family(tiny_config)
  learner = experiment.make_learner(tiny_config, family)
  return family, learner, learner.init(jax.random.key(0))


def _close(a, b, **kw):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, **kw)


def test_remat_gives_the_same_gradient_and_curve(tiny_config):
  family, learner, theta = _parts(tiny_config)
  key = jax.random.key(1)
  # T=5: two checkpointed segments of 2 steps; T=12: two of 4 plus a tail of 3.
  for num_steps in (1, 5, 12):
    plain = estimators.full_backprop(learner, family, objectives.mean_loss, 4, num_steps)
    remat = estimators.full_backprop(learner, family, objectives.mean_loss, 4, num_steps,
                                     remat=True)
    g1, _, m1 = jax.jit(plain.estimate)(theta, (), key)
    g2, _, m2 = jax.jit(remat.estimate)(theta, (), key)
    _close(g1, g2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m1["curve"], m2["curve"], rtol=1e-6)
    assert m1["curve"].shape == (num_steps + 1,)


def test_remat_memory_grows_like_sqrt_t(tiny_config):
  family, learner, theta = _parts(tiny_config)
  episode = family.sample(jax.random.key(0))

  def temp_bytes(num_steps, remat):
    loss = lambda t: jnp.sum(unroll(learner, t, learner.init_state(t, episode), episode,
                                    num_steps, remat)[1])
    return jax.jit(jax.grad(loss)).lower(theta).compile().memory_analysis().temp_size_in_bytes

  plain = [temp_bytes(t, False) for t in (100, 400)]
  remat = [temp_bytes(t, True) for t in (100, 400)]
  assert plain[1] / plain[0] > 3  # linear in T
  assert remat[1] / remat[0] < 2.5  # sqrt(4) = 2, plus constants
  assert remat[1] < plain[1] / 4


def test_truncated_segments_carry_state_and_resample_at_the_end(tiny_config):
  family, learner, theta = _parts(tiny_config)
  est = estimators.truncated_backprop(learner, family, objectives.final_loss, 4, num_steps=4,
                                      truncation_length=2)
  state = jax.jit(est.init)(jax.random.key(2), theta)
  episodes = state.episodes
  estimate = jax.jit(est.estimate)  # one program for both segments

  # First segment: identical to full backprop through 2 steps on the same episodes.
  def two_step_loss(th):
    def per(ep):
      return unroll(learner, th, learner.init_state(th, ep), ep, 2)[1][-1]
    return jax.vmap(per)(episodes).mean()

  grads, state, metrics = estimate(theta, state, jax.random.key(3))
  _close(grads, jax.jit(jax.grad(two_step_loss))(theta), rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(state.step, 2)
  assert metrics["curve"].shape == (3,)

  # Second segment: continues from the carried states; for a MAML init the gradient through
  # the carried state is cut, so the init gets none.
  grads2, state2, _ = estimate(theta, state, jax.random.key(4))
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads2))
  np.testing.assert_array_equal(state2.step, 0)
  assert not np.allclose(state2.episodes.support_x, episodes.support_x)


def test_truncation_must_divide_the_unroll(tiny_config):
  family, learner, _ = _parts(tiny_config)
  try:
    estimators.truncated_backprop(learner, family, objectives.final_loss, 4, 5, 2)
  except ValueError as e:
    assert ("num_steps (5) must be a multiple of estimator.truncation_length (2): set "
            "estimator.truncation_length to one of [1, 5]") in str(e)
  else:
    raise AssertionError("expected a ValueError")


def test_meta_gradient_equals_the_one_through_the_whole_differentiated_curve(tiny_config):
  """Curve entries an objective's gradient does not reach are measured as constants; the
  meta-gradient is the one through the whole differentiated curve to float tolerance (one
  step of every MAML-family learner: tests/test_handwritten.py)."""
  family, learner, theta = _parts(tiny_config)
  key = jax.random.key(3)
  for objective, num_steps in ((objectives.get_objective("final"), 3),
                               (objectives.get_objective("progress"), 3)):
    assert objective.gradient_reads != "all"
    fast = estimators.full_backprop(learner, family, objective, 4, num_steps)
    grads, _, metrics = jax.jit(fast.estimate)(theta, (), key)

    def reference(th):
      episodes = jax.vmap(family.sample)(jax.random.split(key, 4))
      curves = jax.vmap(lambda ep: unroll(learner, th, learner.init_state(th, ep), ep,
                                          num_steps)[1])(episodes)
      return jnp.mean(objective(curves)), curves

    (loss, curves), expected = jax.jit(jax.value_and_grad(reference, has_aux=True))(theta)
    np.testing.assert_allclose(metrics["meta_loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["curve"], jnp.mean(curves, 0), rtol=1e-6)
    _close(grads, expected, rtol=1e-5, atol=1e-7)


def test_unroll_curves_are_the_same_whatever_is_differentiated(tiny_config):
  family, learner, theta = _parts(tiny_config)
  episode = family.sample(jax.random.key(2))

  @jax.jit
  def run(th):
    out = {}
    for mode in ("all", "steps", "final"):
      for t in (0, 1, 3):
        f = lambda th, mode=mode, t=t: unroll(learner, th, learner.init_state(th, episode),
                                              episode, t, differentiate=mode)[1]
        out[mode, t] = (f(th), jax.grad(lambda th, f=f: f(th)[-1])(th))
    return out

  out = run(theta)
  for t in (0, 1, 3):
    for mode in ("steps", "final"):
      np.testing.assert_allclose(out[mode, t][0], out["all", t][0], rtol=1e-6)
    _close(out["final", t][1], out["all", t][1], rtol=1e-5, atol=1e-7)
  assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(out["steps", 0][1]))
