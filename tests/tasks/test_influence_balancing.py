"""The influence-balancing system: its steady state and long-horizon optimum."""

import jax.numpy as jnp
import numpy as np

from metalearn.tasks.influence_balancing import THETA_STAR, InfluenceBalancing
from metalearn.unroll import unroll


def test_steady_state_and_optimum():
  learner = InfluenceBalancing()
  for theta in (0.5, -0.3):
    th = {"theta": jnp.float32(theta)}
    end, _ = unroll(learner, th, learner.init_state(th, None), None, 400)
    assert float(end[0]) == np.float32(-6 * theta) or abs(float(end[0]) + 6 * theta) < 1e-4
  th = {"theta": jnp.float32(THETA_STAR)}
  end, curve = unroll(learner, th, learner.init_state(th, None), None, 400)
  assert float(curve[-1]) < 1e-8
