"""Uniform, fixed-order, TSCL and Exp3.S teachers: rules, planted bandits, jit/scan, checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.checkpoint import Checkpointer
from metalearn.curriculum import TEACHERS, make_teacher, teachers


def _bandit(teacher, score_fn, steps, key=0):
  """Runs ``teacher`` for ``steps`` in one jitted scan on a bandit whose score of arm ``a``
  after its ``n``-th practice is ``score_fn(a, n)``; returns the proposed arms."""
  num_arms = teacher.space[1]

  def step(carry, key):
    state, practised_N = carry
    arm = teacher.propose(state, key)
    practised_N = practised_N.at[arm].add(1)
    state = teacher.observe(state, arm, score_fn(arm, practised_N[arm]))
    return (state, practised_N), arm

  run = jax.jit(lambda key: jax.lax.scan(
      step, (teacher.init(key), jnp.zeros(num_arms, jnp.int32)), jax.random.split(key, steps)))
  (_, _), arms = run(jax.random.key(key))
  return np.asarray(arms)


def _rising_arm(best):
  """Arm ``best`` gains 0.004 per practice (for 250 practices); arm 0 is saturated at 1; the
  rest are flat at 0.2."""
  def score(arm, n):
    return jnp.where(arm == best, jnp.minimum(0.004 * n, 1.0), jnp.where(arm == 0, 1.0, 0.2))
  return score


def test_uniform_frequencies_and_box():
  discrete = make_teacher("uniform", ("discrete", 5))
  keys = jax.random.split(jax.random.key(0), 20000)
  arms = np.asarray(jax.vmap(lambda k: discrete.propose(discrete.init(k), k))(keys))
  assert arms.dtype == np.int32
  np.testing.assert_allclose(np.bincount(arms, minlength=5) / arms.size, 0.2, atol=0.015)
  box = make_teacher("uniform", ("box", 3))
  points = np.asarray(jax.vmap(lambda k: box.propose(box.init(k), k))(keys))
  assert points.shape == (20000, 3) and points.min() >= 0 and points.max() <= 1
  np.testing.assert_allclose(points.mean(0), 0.5, atol=0.01)


def test_fixed_order_advances_by_count_and_stays_on_last():
  teacher = make_teacher("fixed", ("discrete", 4), order=[2, 0, 1], steps_per_task=3)
  propose, observe = jax.jit(teacher.propose), jax.jit(teacher.observe)  # not op by op
  state = teacher.init(jax.random.key(0))
  seen = []
  for _ in range(11):
    arm = int(propose(state, jax.random.key(1)))
    seen.append(arm)
    state = observe(state, arm, 0.0)
  assert seen == [2, 2, 2, 0, 0, 0, 1, 1, 1, 1, 1]
  # Observations of another arm do not count.
  state = teacher.init(jax.random.key(0))
  for _ in range(5):
    state = observe(state, 3, 1.0)
  assert int(propose(state, jax.random.key(1))) == 2


def test_fixed_order_advances_on_mastery_of_the_current_arm_only():
  teacher = make_teacher("fixed", ("discrete", 3), mastery=0.8)
  state = teacher.init(jax.random.key(0))
  state = teacher.observe(state, 1, 0.9)  # not the current arm (0): ignored
  assert int(teacher.propose(state, None)) == 0
  state = teacher.observe(state, 0, 0.79)
  assert int(teacher.propose(state, None)) == 0
  state = teacher.observe(state, 0, 0.8)
  assert int(teacher.propose(state, None)) == 1
  with pytest.raises(ValueError, match="give steps_per_task and/or mastery"):
    make_teacher("fixed", ("discrete", 3))


def test_tscl_window_slope_on_a_hand_example():
  teacher = teachers.tscl(2, window=3)
  state, observe = teacher.init(None), jax.jit(teacher.observe)
  for arm, score in [(0, 0.0), (1, 5.0), (0, 1.0), (1, 5.0), (0, 2.0), (0, 4.0)]:
    state = observe(state, arm, score)
  # Arm 0 holds its last 3 of (t, s) = (0, 0), (2, 1), (4, 2), (5, 4): (2, 1), (4, 2), (5, 4).
  t, s = np.array([2.0, 4.0, 5.0]), np.array([1.0, 2.0, 4.0])
  expected = ((t - t.mean()) * (s - s.mean())).sum() / ((t - t.mean()) ** 2).sum()
  np.testing.assert_allclose(teachers.window_slopes(state), [expected, 0.0], rtol=1e-6)


@pytest.mark.parametrize("policy", ["epsilon_greedy", "boltzmann"])
def test_tscl_prefers_the_arm_that_is_learning(policy):
  teacher = make_teacher("tscl", ("discrete", 6), policy=policy, temperature=1e-3)
  arms = _bandit(teacher, _rising_arm(best=4), steps=400)
  assert sorted(arms[:6]) == list(range(6))  # every arm tried once first
  counts = np.bincount(arms[6:200], minlength=6)
  assert counts.argmax() == 4 and counts[4] > 0.6 * counts.sum(), counts


def test_tscl_absolute_slope_also_chases_forgetting():
  falling = lambda arm, n: jnp.where(arm == 2, 1.0 - 0.01 * n, 0.5)  # noqa: E731
  arms = _bandit(make_teacher("tscl", ("discrete", 5)), falling, steps=300)
  assert np.bincount(arms[5:], minlength=5).argmax() == 2


def test_rescaling_and_sorted_buffer():
  np.testing.assert_allclose(
      [teachers.rescale_reward(jnp.float32(x), 0.0, 1.0) for x in (-2, 0, 0.25, 1, 3)],
      [-1, -1, -0.5, 1, 1])
  assert float(teachers.rescale_reward(jnp.float32(0.1), 0.0, 0.0)) == 1.0
  assert float(teachers.rescale_reward(jnp.float32(0.0), 0.0, 0.0)) == 0.0
  size, rng = 7, np.random.default_rng(0)
  ring, sorted_h = np.zeros(size, np.float32), jnp.full((size,), jnp.inf)
  insert = jax.jit(teachers.sorted_insert)  # one program for the 40 insertions, not op by op
  quantiles = jax.jit(teachers.sorted_quantiles, static_argnums=2)
  for i, x in enumerate(rng.integers(0, 5, 40).astype(np.float32)):  # ties included
    sorted_h = insert(sorted_h, x, ring[i % size], i >= size)
    ring[i % size] = x
    n = min(i + 1, size)
    np.testing.assert_array_equal(np.asarray(sorted_h)[:n], np.sort(ring[:n]))
    np.testing.assert_allclose(quantiles(sorted_h, i + 1, (0.2, 0.8)),
                               np.quantile(ring[:n], (0.2, 0.8)), rtol=1e-6)


def test_exp3s_update_matches_the_equations_by_hand():
  eta, eps, beta, alpha, n = 0.5, 0.1, 0.05, 0.2, 3
  teacher = make_teacher("exp3s", ("discrete", n), eta=eta, epsilon=eps, beta=beta, alpha=alpha)
  state, observe = teacher.init(None), jax.jit(teacher.observe)  # not op by op
  state = observe(state, 1, 0.3)  # first sight of arm 1: progress 0
  w = np.asarray(state.log_weights_N, np.float64)
  pi = (1 - eps) * np.exp(w) / np.exp(w).sum() + eps / n
  state = observe(state, 1, 0.7)  # progress 0.4; rewards so far [0, 0.4]
  q_lo, q_hi = np.quantile([0.0, 0.4], [0.2, 0.8])
  r = np.clip(2 * (0.4 - q_lo) / (q_hi - q_lo) - 1, -1, 1)
  a = w + eta * ((np.arange(n) == 1) * r + beta) / pi
  e = np.exp(a)
  expected = np.log((1 - alpha) * e + alpha / (n - 1) * (e.sum() - e))
  np.testing.assert_allclose(np.asarray(state.log_weights_N), expected - expected.max(),
                             rtol=1e-5, atol=1e-6)


def test_exp3s_prefers_the_arm_that_is_learning():
  teacher = make_teacher("exp3s", ("discrete", 5))  # the paper's constants
  slow_rise = lambda arm, n: jnp.where(arm == 3, 1e-4 * n, jnp.where(arm == 0, 1.0, 0.2))  # noqa: E731
  counts = np.bincount(_bandit(teacher, slow_rise, steps=4000)[-1000:], minlength=5)
  assert counts.argmax() == 3 and counts[3] > 0.5 * counts.sum(), counts


def test_exp3s_absolute_progress_chases_forgetting_and_progress_avoids_it():
  slow_fall = lambda arm, n: jnp.where(arm == 2, 1 - 1e-4 * n, 0.5)  # noqa: E731
  counts = np.bincount(_bandit(make_teacher("exp3s", ("discrete", 5), reward="absolute_progress"),
                               slow_fall, steps=4000)[-1000:], minlength=5)
  assert counts.argmax() == 2 and counts[2] > 0.5 * counts.sum(), counts
  counts = np.bincount(_bandit(make_teacher("exp3s", ("discrete", 5), reward="progress"),
                               slow_fall, steps=4000)[-1000:], minlength=5)
  assert counts.argmin() == 2, counts


@pytest.mark.parametrize("name", ["uniform", "fixed", "tscl", "exp3s"])
def test_same_key_same_proposals(name):
  options = {"steps_per_task": 5} if name == "fixed" else {}
  teacher = make_teacher(name, ("discrete", 8), **options)
  score = lambda arm, n: 0.05 * n * (arm % 3)  # noqa: E731
  np.testing.assert_array_equal(_bandit(teacher, score, 200, key=3),
                                _bandit(teacher, score, 200, key=3))
  if name != "fixed":
    assert not np.array_equal(_bandit(teacher, score, 200, key=3),
                              _bandit(teacher, score, 200, key=4))


def test_states_round_trip_through_the_checkpointer(tmp_path):
  states = {}
  for name in ("uniform", "fixed", "tscl", "exp3s"):
    options = {"mastery": 0.5} if name == "fixed" else {}
    teacher = make_teacher(name, ("discrete", 4), **options)
    state, observe = teacher.init(jax.random.key(0)), jax.jit(teacher.observe)
    for arm, score in [(0, 0.2), (1, 0.6), (0, 0.9), (2, 0.1)]:
      state = observe(state, arm, score)
    states[name] = state
  ckpt = Checkpointer(tmp_path / "ckpt", 2)
  ckpt.save(7, states)
  ckpt.wait()
  template = jax.tree.map(jnp.zeros_like, states)
  restored = ckpt.restore(7, template)
  ckpt.close()
  for name, state in states.items():
    assert type(restored[name]) is type(state)
    for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(restored[name])):
      np.testing.assert_array_equal(x, y)


def test_make_teacher_errors_name_the_fix():
  with pytest.raises(ValueError, match=r"teacher 'ucb' is not a registered teacher. "
                     r"Registered: alp_gmm, exp3s, fixed, tscl, uniform"):
    make_teacher("ucb", ("discrete", 3))
  with pytest.raises(ValueError, match=r"'alp_gmm' needs a space \('box', dims\)"):
    make_teacher("alp_gmm", ("discrete", 3))
  for name in ("tscl", "exp3s", "fixed"):
    with pytest.raises(ValueError, match=rf"'{name}' needs a space \('discrete', num_tasks\)"):
      make_teacher(name, ("box", 2))
  with pytest.raises(ValueError, match=r"unknown option\(s\) \['windw'\] for teacher 'tscl'; "
                     r"valid options: \['window', 'policy'"):
    make_teacher("tscl", ("discrete", 3), windw=5)
  with pytest.raises(ValueError, match="policy must be 'epsilon_greedy' or 'boltzmann'"):
    make_teacher("tscl", ("discrete", 3), policy="greedy")
  with pytest.raises(ValueError, match="at least 2 arms"):
    make_teacher("exp3s", ("discrete", 1))
  with pytest.raises(ValueError, match=r"positive int size"):
    make_teacher("uniform", ("discrete", 0))
  assert set(TEACHERS.names()) == {"uniform", "fixed", "tscl", "exp3s", "alp_gmm"}
