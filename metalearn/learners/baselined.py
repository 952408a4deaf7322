r"""A learner's curve measured against a baseline learner's on the same task.

``VersusBaseline(learner, init_key)`` runs ``learner`` at the trained meta-parameters
``theta`` and, beside it, at fixed meta-parameters ``theta_0 = learner.init(init_key)`` (with
the run's init key: the same learner learning from scratch, as before meta-training), and
measures each point of the curve as the ratio

.. math::  r_t = L_t(\\theta) / B_t, \\qquad B_t = L_t(\\theta_0)\\ \\text{(held constant)}.

Any meta-objective then scores the learner relative to its baseline at equal steps: ``mean``
of :math:`r` is :math:`1 - P_B`, one minus :func:`metalearn.objectives.relative_improvement`,
and ``progress`` of :math:`r` rewards gaining on the baseline fast. The baseline state is
carried with the learner's (a pair), so truncated estimators (truncated backprop, PES) carry
both runs across segments. The cost is one more unroll without gradients. ``theta_0`` is
recomputed from the key inside the traced code rather than stored, so a large network's
initial weights are not baked into the compiled program as constants. The baseline is floored
at the smallest positive float: where both are 0 (an in-context curve's masked positions) the
ratio is 0; a baseline that reaches exactly 0 loss where the learner does not gives a huge
ratio, as it should.
"""

import dataclasses

import jax
import jax.numpy as jnp

from metalearn.learners.base import Learner


@dataclasses.dataclass(frozen=True)
class VersusBaseline(Learner):
  """``learner`` with its curve divided by the curve of the same learner at ``theta_0``.

  Attributes:
    learner: any learner.
    init_key: the key of the baseline's meta-parameters, ``learner.init(init_key)``.
  """
  learner: Learner
  init_key: jax.Array

  @property
  def theta_0(self):
    return jax.lax.stop_gradient(self.learner.init(self.init_key))

  @property
  def one_pass(self) -> bool:
    return self.learner.one_pass

  @property
  def first_step_apart(self) -> bool:
    return self.learner.first_step_apart

  @property
  def num_inner_steps(self) -> int:
    return self.learner.num_inner_steps

  def describe(self) -> dict:
    return {**self.learner.describe(), "baseline": "initial"}

  def init(self, key):
    return self.learner.init(key)

  def init_state(self, theta, episode):
    base = jax.lax.stop_gradient(self.learner.init_state(self.theta_0, episode))
    return self.learner.init_state(theta, episode), base

  def step(self, theta, state, episode):
    own, base = state
    base = jax.lax.stop_gradient(self.learner.step(self.theta_0, base, episode))
    return self.learner.step(theta, own, episode), base

  def query_loss(self, theta, state, episode):
    own, base = state
    base_loss = jax.lax.stop_gradient(self.learner.query_loss(self.theta_0, base, episode))
    return self.learner.query_loss(theta, own, episode) / _floor(base_loss)

  def predict(self, theta, state, x):
    return self.learner.predict(theta, state[0], x)

  def curve(self, theta, episode):
    """In-context learners: the ratio of the two curves from one forward pass each."""
    base = jax.lax.stop_gradient(self.learner.curve(self.theta_0, episode))
    return self.learner.curve(theta, episode) / _floor(base)


def _floor(x):
  return jnp.maximum(x, jnp.finfo(x.dtype).tiny)
