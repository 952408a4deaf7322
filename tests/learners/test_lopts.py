"""Learned optimizers and baselines as update rules, and their optax export."""

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn.learners import (OptaxRule, OptimizerLearner, adam_rule, as_optax, export,
                                sgd_momentum_rule)
from metalearn.learners.hyper_lopt import HyperLOpt
from metalearn.learners.lstm_lopt import LSTMLOpt, preprocess
from metalearn.learners.mlp_lopt import MLPLOpt
from metalearn.tasks import ClassificationTraining
from metalearn.unroll import unroll

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.arange(4.0)}
GRADS = jax.tree.map(lambda p: jnp.cos(3 * p) + 0.1, PARAMS)
RULES = {"mlp": MLPLOpt(), "small": MLPLOpt(hidden=(8,), features="adafactor"),
         "lstm": LSTMLOpt(hidden_size=4), "hyper": HyperLOpt()}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_updates_match_parameter_shapes_and_are_finite(name):
  rule = RULES[name]
  theta = jax.jit(rule.init)(jax.random.key(0))
  state = jax.jit(rule.init_state, static_argnums=2)(theta, PARAMS, 100)
  update = jax.jit(rule.update)  # one program for the three steps, not op by op
  for _ in range(3):
    updates, state = update(theta, state, GRADS, PARAMS, jnp.float32(1.5))
  assert jax.tree.structure(updates) == jax.tree.structure(PARAMS)
  for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(PARAMS)):
    assert u.shape == p.shape and np.isfinite(u).all() and np.abs(u).sum() > 0


def test_mlp_lopt_feature_counts():
  assert MLPLOpt().num_features == 19
  assert MLPLOpt(features="adafactor").num_features == 13


def test_step_size_rules_equal_optax():
  for rule, tx in ((adam_rule(), optax.adam(0.03)), (sgd_momentum_rule(), optax.sgd(0.03, 0.9))):
    theta = {"lr": jnp.float32(0.03)}
    s_rule, s_tx = rule.init_state(theta, PARAMS, 10), tx.init(PARAMS)
    for _ in range(3):
      u_rule, s_rule = rule.update(theta, s_rule, GRADS, PARAMS, None)
      u_tx, s_tx = tx.update(GRADS, s_tx, PARAMS)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u_rule, u_tx)


def test_untrained_hyper_controller_is_adam_at_its_initial_step_size():
  rule = HyperLOpt(init_lr=0.01)
  theta = rule.init(jax.random.key(0))
  state = rule.init_state(theta, PARAMS, 10)
  m = jax.tree.map(jnp.zeros_like, PARAMS)
  v = jax.tree.map(jnp.zeros_like, PARAMS)
  for t in range(1, 4):
    g = jax.tree.map(lambda x: x * t, GRADS)
    updates, state = rule.update(theta, state, g, PARAMS, jnp.float32(2.0 / t))
    m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
    v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
    expect = jax.tree.map(lambda m, v: -0.01 * m / (jnp.sqrt(v / (1 - 0.999**t)) + 1e-8), m, v)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), updates, expect)


def test_lstm_preprocessing_is_bounded_and_keeps_sign():
  g = jnp.array([1e-8, -1e-3, 0.5, -20.0])
  x = preprocess(g)
  assert np.all(np.abs(x[:, 0]) <= 1.0 + 1e-6)
  np.testing.assert_array_equal(np.sign(x[1:, 1]), np.sign(g[1:]))


def test_optimizer_learner_curve_is_the_training_loss_it_sees():
  family = ClassificationTraining(batch_size=16)
  learner = OptimizerLearner(family, OptaxRule(optax.adam(0.01)), 30)
  task = family.sample(jax.random.key(0))
  state = learner.init_state({}, task)
  _, curve = unroll(learner, {}, state, task, 30)
  assert curve[0] == curve[1]  # L_0 repeats L_1: both the loss of batch 0 at the init
  assert float(jnp.mean(curve[-5:])) < 0.7 * float(curve[0])


class _Net(nnx.Module):
  def __init__(self, rngs):
    self.l1 = nnx.Linear(4, 16, rngs=rngs)
    self.l2 = nnx.Linear(16, 1, rngs=rngs)

  def __call__(self, x):
    return self.l2(jax.nn.relu(self.l1(x)))


def _train_flax(tx, steps=60):
  """A plain optax loop on a flax NNX regression model; returns the losses."""
  model = _Net(nnx.Rngs(0))
  graphdef, params = nnx.split(model, nnx.Param)
  x = jax.random.normal(jax.random.key(1), (64, 4))
  y = jnp.sin(x.sum(-1, keepdims=True))

  def loss_fn(p):
    return jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)

  @jax.jit
  def step(p, s):
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, s = tx.update(g, s, p, loss=loss)
    return optax.apply_updates(p, u), s, loss

  state, losses = tx.init(params), []
  for _ in range(steps):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  return losses


def test_exported_optimizer_trains_a_flax_model_and_round_trips_through_orbax(tmp_path):
  rule = HyperLOpt(init_lr=0.01)
  theta = rule.init(jax.random.key(0))
  theta = jax.tree.map(lambda x: x + 0.01, theta)  # not the zero readout: a trained-like theta
  losses = _train_flax(as_optax(rule, theta, 60))
  assert losses[-1] < 0.5 * losses[0]
  export.save(tmp_path / "lopt", "hyper_lopt", {"hidden": [32], "init_lr": 0.01}, theta)
  loaded = export.load_optax(tmp_path / "lopt", 60)
  np.testing.assert_allclose(_train_flax(loaded), losses, rtol=1e-6)
  mlp = MLPLOpt()
  m_theta = mlp.init(jax.random.key(3))
  export.save(tmp_path / "mlp", "mlp_lopt", {"hidden": [32, 32]}, m_theta)
  rule2, theta2 = export.load(tmp_path / "mlp")
  jax.tree.map(np.testing.assert_array_equal, theta2, m_theta)
  assert rule2 == mlp


def test_export_errors_name_the_fix(tmp_path):
  rule = HyperLOpt()
  tx = as_optax(rule, rule.init(jax.random.key(0)), 10)
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match="needs the loss"):
    tx.update(GRADS, state, PARAMS)
  with pytest.raises(ValueError, match="needs the parameters"):
    tx.update(GRADS, state)
  with pytest.raises(FileNotFoundError, match="rule.json"):
    export.load(tmp_path)
  with pytest.raises(ValueError, match="unknown learned optimizer"):
    export.make_rule("adam_lopt", {})


def test_train_vs_reference_curve_is_the_log_ratio_to_the_reference_on_the_same_batches():
  family = ClassificationTraining(batch_size=16)
  task = family.sample(jax.random.key(0))
  ref = OptaxRule(optax.adam(1e-3))
  same = OptimizerLearner(family, OptaxRule(optax.adam(1e-3)), 20, "train_vs_reference", ref)
  _, curve = unroll(same, {}, same.init_state({}, task), task, 20)
  np.testing.assert_allclose(curve, 0.0, atol=1e-6)  # the same optimizer: ratio 1 throughout
  fast = OptimizerLearner(family, OptaxRule(optax.adam(1e-2)), 20, "train_vs_reference", ref)
  _, ratio = unroll(fast, {}, fast.init_state({}, task), task, 20)
  curves = {}
  for lr in (1e-2, 1e-3):
    plain = OptimizerLearner(family, OptaxRule(optax.adam(lr)), 20)
    curves[lr] = unroll(plain, {}, plain.init_state({}, task), task, 20)[1]
  np.testing.assert_allclose(ratio, np.log(curves[1e-2]) - np.log(curves[1e-3]), atol=1e-5)
  assert float(ratio[-1]) < 0  # the larger step is ahead after 20 steps
