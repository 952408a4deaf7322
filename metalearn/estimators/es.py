"""Antithetic evolution strategies over full unrolls.

With perturbations :math:`\\epsilon_b \\sim N(0, \\sigma^2 I)`, one task per pair, and
:math:`f_b^\\pm` the objective of the full ``num_steps`` unroll at :math:`\\theta \\pm \\epsilon_b`,

.. math::  \\hat g = \\frac{1}{B} \\sum_b \\frac{f_b^+ - f_b^-}{2\\sigma^2}\\, \\epsilon_b ,

an unbiased estimate of the gradient of the Gaussian-smoothed objective
:math:`\\mathbb{E}_\\epsilon f(\\theta + \\epsilon)`. Nothing is differentiated: it works for
non-differentiable objectives and chaotic unrolls where backprop explodes, at the price of
variance that grows with the number of meta-parameters.

A pair with a non-finite loss anywhere on either trajectory is excluded from the average and
counted (``nonfinite_trajectories``); when every pair is, ``meta_loss`` is NaN and the
meta-trainer skips the update (counting it too).
"""

import jax
import jax.numpy as jnp

from metalearn import parallel
from metalearn.estimators import perturbations as P
from metalearn.estimators.base import ESTIMATORS, SIGMA, EstimatorSpec, MetaGradientEstimator
from metalearn.learners import Learner
from metalearn.objectives import Objective
from metalearn.tasks import sample_batch
from metalearn.unroll import unroll


def antithetic_es(learner: Learner, family, objective: Objective, meta_batch_size: int,
                  num_steps: int, sigma: float, mesh: jax.sharding.Mesh | None = None
                  ) -> MetaGradientEstimator:
  """Antithetic ES with ``meta_batch_size`` pairs, each on its own task, over
  ``num_steps``-step unrolls from ``init_state``. With a ``mesh``, the ``2 * meta_batch_size``
  trajectories are split over its ``data`` axis."""

  def init(key, theta):
    del key, theta
    return ()

  def estimate(theta, state, key):
    k_tasks, k_eps = jax.random.split(key)
    tasks = sample_batch(family, k_tasks, meta_batch_size)
    eps_B = jax.vmap(lambda k: P.gaussian_like(theta, k, sigma))(
        jax.random.split(k_eps, meta_batch_size))
    thetas_2B, tasks_2B = parallel.shard_tasks((P.antithetic(theta, eps_B), P.tile2(tasks)),
                                               mesh)

    def run(th, task):
      _, curve = unroll(learner, th, learner.init_state(th, task), task, num_steps)
      return objective(curve), curve

    f_2B, curves_2B = jax.vmap(run)(thetas_2B, tasks_2B)
    good = P.finite_pairs(f_2B, curves_2B)
    weights = jnp.where(good, (f_2B[:meta_batch_size] - f_2B[meta_batch_size:])
                        / (2 * sigma**2), 0.0)
    grads = P.weighted_sum(weights, eps_B, jnp.sum(good))
    return grads, state, P.pair_summary(f_2B, curves_2B, good)

  return MetaGradientEstimator(init, estimate)


ESTIMATORS.register(EstimatorSpec(
    name="es", doc="antithetic evolution strategies over full unrolls",
    build=lambda e, learner, family, objective, batch, steps, mesh: antithetic_es(
        learner, family, objective, batch, steps, e.sigma, mesh),
    options=dict(sigma=SIGMA)))
