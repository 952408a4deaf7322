"""Tinker's built-in losses, each checked by value and gradient on a hand-computed case."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.tinker import losses

P = jnp.log(jnp.array([0.5, 0.25, 0.8]))     # the trainer's log-probabilities
INPUTS = {"target_tokens": jnp.array([3, 1, 2]), "weights": jnp.array([0.0, 1.0, 1.0]),
          "logprobs": jnp.log(jnp.array([0.4, 0.5, 0.8])),   # the sampler's
          "advantages": jnp.array([1.0, -2.0, 0.5])}


def _loss(name, config=None):
  config = losses.config_for(name, config)
  fn = lambda p: jnp.sum(losses.token_losses(name, p, INPUTS, config))
  return float(fn(P)), np.asarray(jax.grad(fn)(P))


@pytest.mark.parametrize("name,value,grad", [
    # -(0 * log .5 + log .25 + log .8)
    ("cross_entropy", 1.6094379, [0.0, -1.0, -1.0]),
    # ratios 1.25, 0.5, 1: -(1.25 - 1 + 0.5); d/dlogp = -r * A
    ("importance_sampling", -0.75, [-1.25, 1.0, -0.5]),
    # clipped ratios 1.2, 0.8, 1: min(1.25, 1.2) + min(-1, -1.6) + 0.5 = 0.1; only token 3
    # is unclipped, so only it has a gradient
    ("ppo", -0.1, [0.0, 0.0, -0.5]),
    # -(1.25 log .5 + 0.5 log .25 (-2) + log .8 * 0.5); gradient -sg(clip(r)) * A
    ("cispo", -0.4082881, [-1.25, 1.0, -0.5]),
    # -(sum logp A - 0.025 (log 1.25 ^ 2 + log 0.5 ^ 2))
    # gradient -A + beta (logp - logq)
    ("dro", -1.9546138, [-1.0 + 0.05 * np.log(1.25), 2.0 + 0.05 * np.log(0.5), -0.5]),
])
def test_each_loss_by_value_and_gradient(name, value, grad):
  got, g = _loss(name)
  assert got == pytest.approx(value, abs=1e-5)
  np.testing.assert_allclose(g, grad, atol=1e-5)


def test_config_overrides_the_defaults():
  tight, _ = _loss("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1})
  # clipped ratios 1.1, 0.9, 1: min(1.25, 1.1) + min(-1, -1.8) + 0.5
  assert tight == pytest.approx(-(1.1 - 1.8 + 0.5), abs=1e-6)
  assert _loss("dro", {"beta": 0.0})[0] == pytest.approx(
      -float(jnp.sum(P * INPUTS["advantages"])), abs=1e-6)


def test_bad_names_inputs_and_config_are_refused():
  with pytest.raises(losses.LossError, match="'ppo2' is not a built-in loss.*custom"):
    losses.get("ppo2")
  with pytest.raises(losses.LossError, match=r"\['beta'\] are not options of 'ppo'"):
    losses.config_for("ppo", {"beta": 1.0})
  with pytest.raises(losses.LossError, match=r"needs loss_fn_inputs \['advantages'\]"):
    losses.check_inputs("importance_sampling", {"target_tokens": 1, "logprobs": 1})
