"""Progress objectives: how much and how fast the learner improves, the thesis of this library.

Every progress objective below is returned negated (meta-training minimises), holds :math:`L_0`
(and any reference curve) constant with ``stop_gradient`` (otherwise a learner could score
progress by starting worse), and is :math:`0` for a learner that does not move.

``progress`` (area under the normalised learning curve)
  .. math::  P = \\frac{1}{T}\\sum_{t=1}^{T} \\frac{L_0 - L_t}{L_0 - L_\\mathrm{ref}},

  with :math:`L_\\mathrm{ref}` the best loss reachable (``reference_loss``; 0 by default, or
  e.g. the noise floor). Each step credits the share of the reachable improvement made *by
  then*, so a fast learner scores higher than a slow one that ends at the same loss;
  :math:`P = 1` means the reference was reached at once. Dividing by
  :math:`L_0 - L_\\mathrm{ref}` puts easy and hard tasks on one scale. A task that starts at
  or below the reference has the denominator floored at :math:`\\epsilon L_0` (the sign of
  each step's improvement is kept: improving is still rewarded, regressing penalised).

``log_progress`` (log-ratio improvement)
  .. math::  P_{\\log} = \\frac{1}{T}\\sum_{t=1}^{T} \\log\\frac{L_0}{L_t},

  the area under the curve of orders of magnitude gained: scale-free, and it keeps rewarding
  improvement near zero loss, where :math:`L_0 - L_t` has saturated.

``discounted_progress`` (per-step discounted progress)
  .. math::  P_\\gamma = \\frac{\\sum_{t=1}^{T} \\gamma^{t-1} (L_{t-1} - L_t)}
                              {L_0 \\sum_{t=1}^{T} \\gamma^{t-1}},

  one-step improvements discounted by ``discount`` :math:`\\gamma`: improvement early is
  worth more than the same improvement late.

Relative to a baseline learner (:func:`relative_improvement`)
  .. math::  P_B = \\frac{1}{T}\\sum_{t=1}^{T} \\frac{B_t - L_t}{B_t},

  with :math:`B_t` the curve of a baseline learner on the same task (the learner at its
  initial meta-parameters, i.e. learning from scratch, or a tuned hand-designed optimizer):
  the average share of the baseline's loss the learner removes at equal steps. The trainer
  gets it by measuring the curve as :math:`L_t / B_t` (``baseline="initial"`` in the config),
  so any objective above applies to it; ``mean`` of that curve is :math:`1 - P_B`.

Why not the plain sum of one-step improvements? It telescopes,
:math:`\\sum_{t=1}^{T}(L_{t-1} - L_t) = L_0 - L_T`: it ignores the path (learning everything at
the last step scores the same as learning at once), so it rewards success, not speed, and its
gradient in :math:`L_0` again pays a learner for a worse start. ``discounted_progress`` with
:math:`\\gamma = 1` is exactly that sum (normalised); :math:`\\gamma < 1` breaks the telescope.
"""

import jax
import jax.numpy as jnp

from metalearn.objectives.base import OBJECTIVES, ObjectiveSpec
from metalearn.registry import ConfigError, Option


def _start(curve: jax.Array) -> jax.Array:
  return jax.lax.stop_gradient(curve[..., :1])


def _positive(x: jax.Array) -> jax.Array:
  return jnp.maximum(x, jnp.finfo(x.dtype).tiny)


def progress(curve: jax.Array, reference_loss: float = 0.0) -> jax.Array:
  """:math:`-\\frac{1}{T}\\sum_{t=1}^{T} (L_0 - L_t) / (L_0 - L_\\mathrm{ref})`, :math:`L_0`
  held constant."""
  loss_0 = _start(curve)
  reachable = jnp.maximum(loss_0 - reference_loss, jnp.finfo(curve.dtype).eps * _positive(loss_0))
  return -jnp.mean((loss_0 - curve[..., 1:]) / reachable, axis=-1)


def log_progress(curve: jax.Array) -> jax.Array:
  """:math:`-\\frac{1}{T}\\sum_{t=1}^{T} \\log(L_0 / L_t)`, :math:`L_0` held constant."""
  return -jnp.mean(jnp.log(_positive(_start(curve))) - jnp.log(_positive(curve[..., 1:])),
                   axis=-1)


def discounted_progress(curve: jax.Array, discount: float = 0.9) -> jax.Array:
  """:math:`-\\sum_t \\gamma^{t-1}(L_{t-1} - L_t) / (L_0 \\sum_t \\gamma^{t-1})`, :math:`L_0`
  held constant (the improvement of step 1 still carries the gradient of :math:`L_1`)."""
  steps = curve.shape[-1] - 1
  weights_T = discount ** jnp.arange(steps, dtype=curve.dtype)
  previous = jnp.concatenate([_start(curve), curve[..., 1:-1]], axis=-1)
  gains = (previous - curve[..., 1:]) / _positive(_start(curve))
  return -jnp.sum(weights_T * gains, axis=-1) / jnp.sum(weights_T)


def relative_improvement(curve: jax.Array, reference: jax.Array) -> jax.Array:
  """:math:`P_B = \\frac{1}{T}\\sum_{t=1}^{T} (B_t - L_t) / B_t` of ``curve`` over a baseline's
  curve ``reference`` on the same task (same shape; held constant). Positive when the learner
  is below the baseline. Not negated: a report metric; to train on it, set the config's
  ``baseline``, which measures the curve as :math:`L_t / B_t`."""
  ref = jax.lax.stop_gradient(reference[..., 1:])
  return jnp.mean((ref - curve[..., 1:]) / ref, axis=-1)


def _check_progress(config) -> None:
  if config.objective.reference_loss > 0 and config.baseline:
    raise ConfigError("objective.reference_loss is a loss; with baseline='initial' the curve "
                      "is a ratio to the baseline: set objective.reference_loss=0")


OBJECTIVES.register(ObjectiveSpec(
    name="progress", fn=progress, doc="area under the normalised learning curve",
    check=_check_progress, gradient_reads="steps",
    options=dict(reference_loss=Option(0.0, ge=0, doc="L_ref, the best loss reachable"))))
OBJECTIVES.register(ObjectiveSpec(name="log_progress", fn=log_progress, gradient_reads="steps",
                                  doc="area under log(L_0 / L_t)"))
OBJECTIVES.register(ObjectiveSpec(
    name="discounted_progress", fn=discounted_progress, doc="discounted one-step improvements",
    gradient_reads="steps",
    options=dict(discount=Option(0.9, gt=0, le=1, doc="gamma, the per-step discount"))))
