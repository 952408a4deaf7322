"""The learner contract shared by every kind of learner.

A learner turns meta-parameters ``theta`` and an episode into a learning curve. It is described
by four pure functions; :func:`metalearn.unroll.unroll` scans ``step`` and records ``query_loss``
after each step, so the curve has ``T + 1`` entries: the loss before learning, then after each
of the ``T`` inner steps.
"""

from typing import Any, Protocol

import jax

from metalearn.tasks import Episode

MetaParams = Any  # a pytree
LearnerState = Any  # a pytree


class Learner(Protocol):
  """What every learner provides (all methods pure and jittable)."""

  def init(self, key: jax.Array) -> MetaParams:
    """Fresh meta-parameters."""

  def init_state(self, theta: MetaParams, episode: Episode) -> LearnerState:
    """The inner state before any learning on ``episode`` (differentiable in ``theta``)."""

  def step(self, theta: MetaParams, state: LearnerState, episode: Episode) -> LearnerState:
    """One inner learning step on the episode's support set."""

  def query_loss(self, theta: MetaParams, state: LearnerState, episode: Episode) -> jax.Array:
    """Scalar loss on the episode's query set in the current state."""

  def predict(self, theta: MetaParams, state: LearnerState, x: jax.Array) -> jax.Array:
    """Predictions for inputs ``x`` in the current state."""
