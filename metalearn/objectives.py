"""Meta-objectives: a learning curve ``L_0, ..., L_T`` (query losses) to a scalar to minimise.

Success objectives score where the learner ends up; *progress* objectives score how much and how
fast it improves, the thesis of this library. Every progress objective below is returned
negated (meta-training minimises), holds :math:`L_0` (and any reference curve) constant with
``stop_gradient`` (otherwise a learner could score progress by starting worse), and is
:math:`0` for a learner that does not move.

``final``
  :math:`L_T`, the MAML objective: only where the learner ends up counts.

``mean``
  :math:`\\frac{1}{T}\\sum_{t=1}^{T} L_t`, the area under the curve after learning starts;
  rewards reaching a low loss early as well as ending low.

``late_mean`` (time-weighted mean)
  :math:`\\frac{1}{T}\\sum_{t=1}^{T} \\frac{2t}{T+1} L_t`: the area under the curve with
  weights growing linearly over the horizon (their mean is 1), so ending low counts more than
  getting low early while every step still carries signal. It needs the steps' places in the
  whole horizon: truncated estimators score a segment starting at step ``s`` of a ``T``-step
  horizon with the same weights :math:`2(s+i)/(T+1)` (:func:`score`), so the segments' scores
  average to the whole curve's.

``mean_all``
  :math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`, including the loss before learning: for in-context
  learners, the loss of every prediction in the prompt, the zero-shot one too (Garg et al.'s
  training loss).

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

Every objective maps a curve ``[..., T + 1]`` to ``[...]``; average over tasks outside.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp

Objective = Callable[[jax.Array], jax.Array]


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


def score(objective: Objective, curve: jax.Array, start, horizon: int) -> jax.Array:
  """``objective`` of a segment of a run: the segment's first entry is step ``start`` (traced
  is fine) of a ``horizon``-step run. Objectives that weigh steps by their place in the run
  (:data:`TIME_AWARE`) get both; the others see the segment as a curve."""
  if getattr(objective, "func", objective) in TIME_AWARE:
    return objective(curve, start=start, horizon=horizon)
  return objective(curve)


def mean_all_loss(curve: jax.Array) -> jax.Array:
  """:math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`."""
  return jnp.mean(curve, axis=-1)


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


OBJECTIVES: dict[str, Objective] = {
    "final": final_loss,
    "mean": mean_loss,
    "late_mean": late_mean_loss,
    "mean_all": mean_all_loss,
    "progress": progress,
    "log_progress": log_progress,
    "discounted_progress": discounted_progress,
}

# Objectives that weigh each step by its place in the whole run (:func:`score`).
TIME_AWARE = frozenset({late_mean_loss})

# The options each objective takes (config keys under ``objective_options``).
OPTIONS = {"progress": ("reference_loss",), "discounted_progress": ("discount",)}


def get_objective(name: str, **options) -> Objective:
  """The objective ``name`` (one of :data:`OBJECTIVES`) with ``options`` bound.

  Options an objective does not take are ignored, so one config block can hold all of them
  (``reference_loss`` for ``progress``, ``discount`` for ``discounted_progress``).
  """
  if name not in OBJECTIVES:
    raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
  bound = {k: v for k, v in options.items() if k in OPTIONS.get(name, ())}
  return functools.partial(OBJECTIVES[name], **bound) if bound else OBJECTIVES[name]
