"""Truncated evolution strategies and Persistent Evolution Strategies (Vicol et al. 2021).

Each of ``meta_batch_size`` antithetic pairs owns a task and two inner runs (at
:math:`\\theta + \\epsilon` and :math:`\\theta - \\epsilon`) that persist across calls. A call
draws fresh :math:`\\epsilon_b`, advances both runs ``truncation_length`` (K) steps and scores
the segment's curve with the objective (:math:`f_b^\\pm`). Then

.. math::  \\hat g_{\\text{TES}} = \\frac{1}{B}\\sum_b \\frac{f_b^+ - f_b^-}{2\\sigma^2}\\epsilon_b,
           \\qquad
           \\hat g_{\\text{PES}} = \\frac{1}{B}\\sum_b \\frac{f_b^+ - f_b^-}{2\\sigma^2}\\xi_b,
           \\quad \\xi_b \\leftarrow \\xi_b + \\epsilon_b .

Truncated ES credits a segment's loss only to that segment's perturbation, so the influence of
:math:`\\theta` on later segments through the carried state is lost: biased, like truncated
backprop. PES keeps each pair's accumulated perturbation :math:`\\xi_b` (the sum of all the
perturbations its runs have been driven by since their task began): the estimate is then
unbiased for the gradient of the smoothed sum of segment losses over the whole trajectory, at
the cost of variance growing with the number of segments.

Runs are reset (fresh task, :math:`\\xi = 0`) when they reach ``num_steps``; a run's first
segment starts from ``init_state`` at its own perturbed :math:`\\theta \\pm \\epsilon`, so
a meta-learned initialisation is estimated too (the perturbation is in :math:`\\xi`). At ``init`` the pairs are staggered: pair ``b``
is first advanced about ``b / B`` of the horizon with :math:`\\theta`, so resets are spread out
and every call sees tasks at all stages of training. A pair whose segment produces a
non-finite loss is excluded from the estimate, counted (``nonfinite_trajectories``) and reset.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metalearn import parallel
from metalearn.estimators import perturbations as P
from metalearn.estimators.base import (ESTIMATORS, SIGMA, TRUNCATION, EstimatorSpec,
                                       MetaGradientEstimator, check_truncated_config,
                                       check_truncation)
from metalearn.registry import Option
from metalearn.learners import Learner
from metalearn.objectives import Objective, score
from metalearn.tasks import sample_batch
from metalearn.unroll import unroll


class PESState(NamedTuple):
  """Persistent runs: ``tasks`` and ``accumulated``/``step`` lead with the pair axis ``[B]``,
  ``inner`` with ``[2B]`` (all positive runs, then all negative ones)."""
  tasks: object
  inner: object
  accumulated: object
  step: jax.Array


def _select(mask, new, old):
  return jax.tree.map(lambda a, b: jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)),
                                             a, b), new, old)


def truncated_es(learner: Learner, family, objective: Objective, meta_batch_size: int,
                 num_steps: int, truncation_length: int, sigma: float,
                 persistent: bool = False, stagger: bool = True,
                 mesh: jax.sharding.Mesh | None = None) -> MetaGradientEstimator:
  """Truncated ES (``persistent=False``) or PES (``persistent=True``).

  Args:
    learner, family, objective: what is meta-trained, on what, scored how (per segment, by
      :func:`metalearn.objectives.score`: a time-aware objective weighs each step by its
      place in the ``num_steps`` horizon).
    meta_batch_size: B, antithetic pairs (each with its own task).
    num_steps: inner steps per task before it is replaced.
    truncation_length: K, inner steps per call.
    sigma: perturbation scale.
    persistent: accumulate perturbations across segments (PES).
    stagger: spread the pairs' starting points over the horizon at ``init``.
    mesh: split the ``2B`` runs over its ``data`` axis.
  """
  check_truncation(num_steps, truncation_length)
  B, K = meta_batch_size, truncation_length

  def fresh(theta, tasks):
    return jax.vmap(learner.init_state, in_axes=(None, 0))(theta, tasks)

  def init(key, theta):
    tasks = sample_batch(family, key, B)
    inner = fresh(theta, tasks)
    offsets = [b * (num_steps // K) // B * K if stagger else 0 for b in range(B)]
    step = jnp.asarray(offsets, jnp.int32)
    if max(offsets):

      def burn(states, t):
        moved = jax.vmap(learner.step, in_axes=(None, 0, 0))(theta, states, tasks)
        return _select(t < step, moved, states), None

      inner, _ = jax.lax.scan(burn, inner, jnp.arange(max(offsets)))
    zeros = jax.tree.map(lambda t: jnp.zeros((B,) + jnp.shape(t), jnp.result_type(t)), theta)
    return PESState(tasks, jax.lax.stop_gradient(P.tile2(inner)), zeros, step)

  def estimate(theta, state: PESState, key):
    k_eps, k_tasks = jax.random.split(key)
    eps_B = jax.vmap(lambda k: P.gaussian_like(theta, k, sigma))(jax.random.split(k_eps, B))
    thetas_2B, inner_2B, tasks_2B = parallel.shard_tasks(
        (P.antithetic(theta, eps_B), state.inner, P.tile2(state.tasks)), mesh)

    def run(th, inner, task, start):
      # A run starting its task begins at its own theta's initial state, so a learner whose
      # initial state depends on theta (a learned initialisation) gets the perturbation there.
      inner = _select(start == 0, learner.init_state(th, task), inner)
      end, curve = unroll(learner, th, inner, task, K)
      return end, score(objective, curve, start, num_steps), curve

    ends, f_2B, curves_2B = jax.vmap(run)(thetas_2B, inner_2B, tasks_2B, P.tile2(state.step))
    good = P.finite_pairs(f_2B, curves_2B)
    accumulated = (jax.tree.map(jnp.add, state.accumulated, eps_B) if persistent else eps_B)
    weights = jnp.where(good, (f_2B[:B] - f_2B[B:]) / (2 * sigma**2), 0.0)
    grads = P.weighted_sum(weights, accumulated, jnp.sum(good))

    step = state.step + K
    reset = (step >= num_steps) | ~good
    new_tasks = sample_batch(family, k_tasks, B)
    tasks = _select(reset, new_tasks, state.tasks)
    restart = fresh(theta, new_tasks)
    inner = _select(jnp.concatenate([reset, reset]), P.tile2(restart), ends)
    accumulated = _select(reset, jax.tree.map(jnp.zeros_like, accumulated), accumulated)
    new_state = PESState(tasks, jax.lax.stop_gradient(inner), accumulated,
                         jnp.where(reset, 0, step))
    metrics = P.pair_summary(f_2B, curves_2B, good)
    return grads, new_state, metrics

  return MetaGradientEstimator(init, estimate)


def pes(learner, family, objective, meta_batch_size, num_steps, truncation_length, sigma,
        stagger: bool = True, mesh=None) -> MetaGradientEstimator:
  """Persistent Evolution Strategies: :func:`truncated_es` with ``persistent=True``."""
  return truncated_es(learner, family, objective, meta_batch_size, num_steps,
                      truncation_length, sigma, persistent=True, stagger=stagger, mesh=mesh)


_OPTIONS = dict(truncation_length=TRUNCATION, sigma=SIGMA,
                stagger=Option(True, doc="spread the pairs' starting points over the horizon"))
for _name, _persistent, _doc in (
    ("truncated_es", False, "truncated antithetic ES over persistent inner runs (biased)"),
    ("pes", True, "Persistent Evolution Strategies (Vicol et al. 2021): unbiased under "
     "truncation")):
  ESTIMATORS.register(EstimatorSpec(
      name=_name, doc=_doc,
      build=(lambda persistent: lambda e, learner, family, objective, batch, steps, mesh:
             truncated_es(learner, family, objective, batch, steps, e.truncation_length,
                          e.sigma, persistent, e.stagger, mesh))(_persistent),
      needs=frozenset({"stepwise"}), truncated=True, check=check_truncated_config,
      options=_OPTIONS))
