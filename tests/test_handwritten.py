"""The engine's meta-gradients against plain hand-written JAX (metalearn/handwritten.py)."""

import pathlib

import jax
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment, handwritten, train
from metalearn.tasks import sample_batch

_CONFIGS = pathlib.Path(__file__).parents[1] / "experiments" / "configs"


def _config(name: str):
  config = config_lib.load_config_module(str(_CONFIGS / "maml_sinusoid.py")).get_config(name)
  config.meta_batch_size = 5
  return config_lib.validate(config)


@pytest.mark.parametrize("name", handwritten.LEARNERS)
def test_meta_gradient_equals_the_hand_written_one(name):
  config = _config(name)
  exp = experiment.build(config)
  theta = exp.learner.init(jax.random.key(0))
  estimator = exp.make_estimator(exp.family)
  key = jax.random.key(4)
  grads, _, metrics = jax.jit(estimator.estimate)(theta, estimator.init(key, theta), key)
  episodes = sample_batch(exp.family, key, config.meta_batch_size)
  loss, expected = jax.jit(handwritten.make_meta_gradient(config))(theta, episodes)
  assert jax.tree.structure(grads) == jax.tree.structure(expected)
  np.testing.assert_allclose(metrics["meta_loss"], loss, rtol=1e-6)
  for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
    np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-7)


def test_a_chunk_follows_the_hand_written_run():
  config = _config("maml")
  exp = experiment.build(config)
  state = train.init_state(exp, config.seed)
  new_state, metrics = train.make_chunk_fn(exp, config.seed)(state, exp.family, 20)
  chunk = handwritten.make_chunk(config, exp.family, experiment.run_keys(config.seed)[2])
  (theta, _), losses = chunk(state.theta, state.opt_state, 0, 20)
  np.testing.assert_allclose(metrics["meta_loss"], losses, rtol=1e-4)
  for a, b in zip(jax.tree.leaves(new_state.theta), jax.tree.leaves(theta)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_configs_it_does_not_cover_are_refused_by_key():
  config = _config("maml")
  config.objective.name = "progress"
  with pytest.raises(ValueError, match="objective.name='progress'"):
    handwritten.make_meta_gradient(config)
