import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import objectives

FAST = jnp.array([4.0, 1.0, 1.0, 1.0])  # learns at once
SLOW = jnp.array([4.0, 4.0, 4.0, 1.0])  # learns only at the last step


def test_values():
  assert float(objectives.final_loss(FAST)) == 1.0
  assert float(objectives.mean_loss(SLOW)) == 3.0
  assert float(objectives.mean_all_loss(SLOW)) == 13.0 / 4  # the starting loss counts too
  np.testing.assert_allclose(objectives.progress(FAST), -0.75)
  np.testing.assert_allclose(objectives.progress(SLOW), -0.25)


def test_summed_one_step_improvement_telescopes_but_progress_rewards_speed():
  summed = lambda c: jnp.sum(c[:-1] - c[1:])
  assert float(summed(FAST)) == float(summed(SLOW)) == float(FAST[0] - FAST[-1])
  assert objectives.progress(FAST) < objectives.progress(SLOW)  # lower is better
  assert objectives.final_loss(FAST) == objectives.final_loss(SLOW)


def test_progress_gives_no_credit_for_a_worse_start():
  grad = jax.grad(lambda c: objectives.progress(c))(FAST)
  assert float(grad[0]) == 0.0 and bool(jnp.all(grad[1:] > 0))


def test_batched_curves_and_unknown_name():
  curves = jnp.stack([FAST, SLOW])
  assert objectives.progress(curves).shape == (2,)
  with pytest.raises(ValueError, match="choose one of"):
    objectives.get_objective("speed")
