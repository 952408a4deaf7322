"""The influence-balancing problem of Vicol et al. 2021 (PES, section 5.1) as a learner.

A linear system with one meta-parameter :math:`\\theta` that is never reset:

.. math::  s_{t+1} = A s_t + \\theta b, \\qquad s_0 = \\mathbf{1} \\in \\mathbb{R}^{23},
           \\qquad A = \\tfrac12 I + \\tfrac12 U, \\qquad b = (\\underbrace{+1}_{10},
           \\underbrace{-1}_{13}),

with :math:`U` the superdiagonal shift; the loss after each K-step unroll is
:math:`\\tfrac12 (s[0] - 1)^2`. :math:`\\theta` reaches ``s[0]`` through the chain of
coordinates, the positive entries of ``b`` act within 10 steps and the negative ones later, so
a short truncation sees only the positive influence and pushes :math:`\\theta` the wrong way.
The steady state is :math:`s^\\star = \\theta (I - A)^{-1} b` with
:math:`s^\\star[0] = 2\\theta \\sum_i b_i = -6\\theta`, so the long-horizon optimum is
:math:`\\theta^\\star = -1/6`.

It implements the :class:`~metalearn.learners.Learner` contract (``theta = {"theta": scalar}``,
the inner state is ``s``, the "episode" is unused), so every estimator applies to it unchanged.
"""

import dataclasses

import jax
import jax.numpy as jnp

from metalearn.learners.base import Learner
from metalearn.tasks.base import TaskFamily

THETA_STAR = -1.0 / 6.0


@dataclasses.dataclass(frozen=True)
class InfluenceBalancing(Learner):
  """The influence-balancing system (dimension 23, 10 positive entries of ``b``)."""
  dim: int = 23
  num_positive: int = 10
  theta_0: float = 0.5

  def init(self, key):
    del key
    return {"theta": jnp.asarray(self.theta_0, jnp.float32)}

  def init_state(self, theta, episode):
    del theta, episode
    return jnp.ones(self.dim)

  def b(self) -> jax.Array:
    return jnp.where(jnp.arange(self.dim) < self.num_positive, 1.0, -1.0)

  def step(self, theta, state, episode):
    del episode
    shifted = jnp.concatenate([state[1:], jnp.zeros(1)])
    return 0.5 * state + 0.5 * shifted + theta["theta"] * self.b()

  def query_loss(self, theta, state, episode):
    del theta, episode
    return 0.5 * (state[0] - 1.0) ** 2

  def predict(self, theta, state, x):
    del theta, x
    return state


@dataclasses.dataclass(frozen=True)
class NoTasks(TaskFamily):
  """A task family with one fixed, empty task (for problems that are not sampled)."""

  def sample(self, key):
    del key
    return jnp.zeros(())
