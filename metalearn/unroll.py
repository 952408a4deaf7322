"""Unrolling a learner: ``T`` inner steps in one ``lax.scan``, returning the learning curve."""

import jax
import jax.numpy as jnp

from metalearn.learners import Learner
from metalearn.tasks import Episode


def unroll(learner: Learner, theta, state, episode: Episode, num_steps: int,
           remat: bool = False):
  """Runs ``num_steps`` inner steps from ``state``.

  Args:
    learner: any :class:`~metalearn.learners.Learner`.
    theta: meta-parameters.
    state: inner state to start from (``learner.init_state`` or a carried truncation state).
    episode: the task.
    num_steps: T, a Python int (static).
    remat: wrap each inner step in ``jax.checkpoint``: backprop then stores only the carried
      state per step and recomputes the step's activations, trading compute for memory.

  Returns:
    ``(final_state, curve)`` with ``curve[t]`` the query loss after ``t`` steps, shape
    ``[T + 1]`` (``curve[0]`` is the loss at ``state``).
  """
  step = jax.checkpoint(learner.step) if remat else learner.step

  def body(s, _):
    s = step(theta, s, episode)
    return s, learner.query_loss(theta, s, episode)

  final_state, losses_T = jax.lax.scan(body, state, None, length=num_steps)
  loss_0 = learner.query_loss(theta, state, episode)
  return final_state, jnp.concatenate([loss_0[None], losses_T])
