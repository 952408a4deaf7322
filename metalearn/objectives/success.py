"""Success objectives: where the learner ends up, or the area under its curve.

``final``
  :math:`L_T`, the MAML objective: only where the learner ends up counts.

``mean``
  :math:`\\frac{1}{T}\\sum_{t=1}^{T} L_t`, the area under the curve after learning starts;
  rewards reaching a low loss early as well as ending low.

``late_mean`` (time-weighted mean)
  :math:`\\frac{1}{T}\\sum_{t=1}^{T} \\frac{2t}{T+1} L_t`: the area under the curve with
  weights growing linearly over the horizon (their mean is 1), so ending low counts more than
  getting low early while every step still carries signal. Time-aware: truncated estimators
  score a segment starting at step ``s`` of a ``T``-step horizon with the same weights
  :math:`2(s+i)/(T+1)`, so the segments' scores average to the whole curve's.

``mean_all``
  :math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`, including the loss before learning: for in-context
  learners, the loss of every prediction in the prompt, the zero-shot one too (Garg et al.'s
  training loss).
"""

import jax
import jax.numpy as jnp

from metalearn.objectives.base import OBJECTIVES, ObjectiveSpec


def final_loss(curve: jax.Array) -> jax.Array:
  """:math:`L_T`."""
  return curve[..., -1]


def mean_loss(curve: jax.Array) -> jax.Array:
  """:math:`\\frac{1}{T}\\sum_{t=1}^{T} L_t`."""
  return jnp.mean(curve[..., 1:], axis=-1)


def late_mean_loss(curve: jax.Array, start=0, horizon: int | None = None) -> jax.Array:
  """:math:`\\frac{1}{T}\\sum_{t=1}^{T} \\frac{2t}{T+1} L_t` of a whole curve, or of a segment
  whose first entry is step ``start`` of a ``horizon``-step run (``start`` may be traced)."""
  steps = curve.shape[-1] - 1
  horizon = steps if horizon is None else horizon
  t = jnp.asarray(start, curve.dtype)[..., None] + jnp.arange(1, steps + 1, dtype=curve.dtype)
  return jnp.mean(curve[..., 1:] * (2.0 * t / (horizon + 1)), axis=-1)


def mean_all_loss(curve: jax.Array) -> jax.Array:
  """:math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`."""
  return jnp.mean(curve, axis=-1)


OBJECTIVES.register(ObjectiveSpec(name="final", fn=final_loss, doc="L_T",
                                  gradient_reads="final"))
OBJECTIVES.register(ObjectiveSpec(name="mean", fn=mean_loss, doc="mean of L_1..L_T",
                                  gradient_reads="steps"))
OBJECTIVES.register(ObjectiveSpec(name="late_mean", fn=late_mean_loss, time_aware=True,
                                  gradient_reads="steps", doc="mean of L_t weighted 2t/(T+1)"))
OBJECTIVES.register(ObjectiveSpec(name="mean_all", fn=mean_all_loss,
                                  doc="mean of L_0..L_T"))
