"""Meta-objectives: a learning curve ``L_0, ..., L_T`` (query losses) to a scalar to minimise.

``final``
  :math:`L_T`, the MAML objective: only where the learner ends up counts.

``mean``
  :math:`\\frac{1}{T}\\sum_{t=1}^{T} L_t`, the area under the curve after learning starts;
  rewards reaching a low loss early as well as ending low.

``mean_all``
  :math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`, including the loss before learning: for in-context
  learners, the loss of every prediction in the prompt, the zero-shot one too (Garg et al.'s
  training loss).

``progress``
  the normalised learning progress, to be *maximised*,

  .. math::  P = \\frac{1}{T}\\sum_{t=1}^{T} \\frac{L_0 - L_t}{L_0},

  returned as :math:`-P`. It is the area under the normalised improvement curve: each step
  credits how much of the starting loss has been removed *by then*, so fast learners score
  higher than slow ones that end at the same loss, and dividing by :math:`L_0` puts easy and hard
  tasks on one scale. :math:`L_0` enters as a constant (``stop_gradient``): otherwise a learner
  could score progress by starting worse.

Why not the plain sum of one-step improvements? It telescopes,
:math:`\\sum_{t=1}^{T}(L_{t-1} - L_t) = L_0 - L_T`: it ignores the path (learning everything at
the last step scores the same as learning at once), so it rewards success, not speed, and its
gradient in :math:`L_0` again pays a learner for a worse start.

Every objective maps a curve ``[..., T + 1]`` to ``[...]``; average over tasks outside.
"""

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


def mean_all_loss(curve: jax.Array) -> jax.Array:
  """:math:`\\frac{1}{T+1}\\sum_{t=0}^{T} L_t`."""
  return jnp.mean(curve, axis=-1)


def progress(curve: jax.Array) -> jax.Array:
  """:math:`-\\frac{1}{T}\\sum_{t=1}^{T} (L_0 - L_t) / L_0` with :math:`L_0` held constant."""
  loss_0 = jax.lax.stop_gradient(curve[..., :1])
  return -jnp.mean((loss_0 - curve[..., 1:]) / loss_0, axis=-1)


OBJECTIVES: dict[str, Objective] = {
    "final": final_loss,
    "mean": mean_loss,
    "mean_all": mean_all_loss,
    "progress": progress,
}


def get_objective(name: str) -> Objective:
  """Looks up an objective by its config name (one of :data:`OBJECTIVES`)."""
  if name not in OBJECTIVES:
    raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
  return OBJECTIVES[name]
