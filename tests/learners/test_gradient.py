"""Meta-gradients of the gradient-based learners against finite differences and formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import estimators, experiment, objectives
from metalearn.unroll import unroll
from tests.conftest import sample_tasks


def _setup(tiny_config, name, num_steps=2, objective="final", dtype=jnp.float64):
  tiny_config.learner.name = name
  family = experiment.make_family(tiny_config)
  learner = experiment.make_learner(tiny_config, family)
  est = estimators.full_backprop(learner, family, objectives.get_objective(objective),
                                 meta_batch_size=3, num_steps=num_steps)
  theta = jax.tree.map(lambda p: p.astype(dtype), jax.jit(learner.init)(jax.random.key(0)))
  return family, learner, est, theta


def _directional_fd_check(est, theta, num_directions=3, eps=1e-5):
  key = jax.random.key(7)
  loss = jax.jit(lambda th: est.estimate(th, (), key)[2]["meta_loss"])
  grads = jax.jit(lambda th: est.estimate(th, (), key)[0])(theta)
  leaves, treedef = jax.tree.flatten(theta)
  for i in range(num_directions):
    keys = jax.random.split(jax.random.key(100 + i), len(leaves))
    v = jax.tree.unflatten(treedef, [jax.random.normal(k, l.shape, l.dtype)
                                     for k, l in zip(keys, leaves)])
    plus = jax.tree.map(lambda t, d: t + eps * d, theta, v)
    minus = jax.tree.map(lambda t, d: t - eps * d, theta, v)
    fd = (loss(plus) - loss(minus)) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v)))
    np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)
  return grads


# (progress holds L_0 constant on purpose, so finite differences of it differ by design.)
@pytest.mark.parametrize("name,objective", [("maml", "final"), ("maml", "mean"),
                                            ("metasgd", "final"), ("anil", "mean")])
def test_second_order_meta_gradient_matches_float64_finite_differences(tiny_config, name,
                                                                       objective):
  with jax.enable_x64(True):
    _, _, est, theta = _setup(tiny_config, name, objective=objective)
    grads = _directional_fd_check(est, theta)
    if name == "metasgd":  # the step sizes are meta-learned: they must receive gradient
      assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads["inner_lr"]))


def test_first_order_maml_equals_query_gradient_at_adapted_params(tiny_config):
  with jax.enable_x64(True):
    family, learner, est, theta = _setup(tiny_config, "fomaml", num_steps=2)
    key = jax.random.key(7)
    grads = jax.jit(est.estimate)(theta, (), key)[0]
    episodes = sample_tasks(family, key, 3)
    alpha = tiny_config.learner.inner_lr

    def adapted(ep):  # two plain SGD steps on the support set
      p = theta["params"]
      for _ in range(2):
        g = jax.grad(lambda q: family.loss(learner.apply_fn(q, ep.support_x), ep.support_y))(p)
        p = jax.tree.map(lambda a, b: a - alpha * b, p, g)
      return jax.grad(lambda q: family.loss(learner.apply_fn(q, ep.query_x), ep.query_y))(p)

    expected = jax.jit(lambda e: jax.tree.map(lambda g: g.mean(0), jax.vmap(adapted)(e)))(
        episodes)
    for a, b in zip(jax.tree.leaves(grads["params"]), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    maml = jax.jit(_setup(tiny_config, "maml", num_steps=2)[2].estimate)(theta, (), key)[0]
    assert not np.allclose(jax.tree.leaves(maml)[0], jax.tree.leaves(grads)[0])


def test_anil_adapts_only_the_head(tiny_config):
  tiny_config.learner.inner_lr = 1e-3
  family, learner, _, theta = _setup(tiny_config, "anil", dtype=jnp.float32)
  episode = jax.tree.map(lambda a: a[0], sample_tasks(family, jax.random.key(1), 1))
  state = jax.jit(learner.init_state)(theta, episode)
  assert set(state) == {"bias", "kernel"}
  end, curve = jax.jit(lambda s: unroll(learner, theta, s, episode, 3))(state)
  assert not np.allclose(end["kernel"], state["kernel"])
  np.testing.assert_array_equal(learner.predict(theta, end, episode.query_x),
                                learner.apply_fn({**theta["params"], "head": end},
                                                 episode.query_x))
  assert curve.shape == (4,)
  support_loss = lambda s: family.loss(learner.predict(theta, s, episode.support_x),
                                       episode.support_y)
  assert float(support_loss(end)) < float(support_loss(state))


def test_reptile_pseudo_gradient_is_theta_minus_mean_adapted(tiny_config):
  tiny_config.learner.name = "reptile"
  family = experiment.make_family(tiny_config)
  learner = experiment.make_learner(tiny_config, family)
  est = estimators.reptile(learner, family, objectives.final_loss, 3, 4)
  theta = jax.jit(learner.init)(jax.random.key(0))
  key = jax.random.key(5)
  grads, _, metrics = jax.jit(est.estimate)(theta, (), key)
  episodes = sample_tasks(family, key, 3)
  ends = jax.jit(jax.vmap(
      lambda ep: unroll(learner, theta, learner.init_state(theta, ep), ep, 4)[0]))(episodes)
  expected = jax.tree.map(lambda t, e: t - e.mean(0), theta["params"], ends)
  for a, b in zip(jax.tree.leaves(grads["params"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert metrics["curve"].shape == (5,)


def test_unknown_learner_name():
  from metalearn.learners import LEARNERS  # pylint: disable=g-import-not-at-top
  from metalearn.registry import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="learner 'mamal' is not a registered learner. Did you "
                                        "mean 'maml'?"):
    LEARNERS.get("mamal")
