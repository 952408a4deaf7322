"""Reptile's meta-update (Nichol et al. 2018) as an estimator.

For tasks :math:`i = 1..B`, run the inner loop from :math:`\\theta` to :math:`\\phi^{(i)}_T` and
return the pseudo-gradient

.. math::  g = \\theta - \\frac{1}{B} \\sum_i \\phi^{(i)}_T ,

so that any optax optimizer applies ``theta - lr * g`` (plain SGD with ``lr = epsilon`` is
the paper's update). Nothing is differentiated; the objective is only reported.
"""

import jax
import jax.numpy as jnp

from metalearn import parallel
from metalearn.estimators.base import ESTIMATORS, EstimatorSpec, MetaGradientEstimator
from metalearn.learners import GradientLearner
from metalearn.objectives import Objective
from metalearn.tasks import TaskFamily, sample_batch
from metalearn.unroll import unroll


def reptile(learner: GradientLearner, family: TaskFamily, objective: Objective,
            meta_batch_size: int, num_steps: int, mesh: jax.sharding.Mesh | None = None
            ) -> MetaGradientEstimator:
  """Reptile pseudo-gradient; needs a learner that adapts all parameters with a fixed step.
  With a ``mesh``, the tasks are split over its ``data`` axis."""
  if learner.adapt != "all" or learner.learn_inner_lr:
    raise ValueError("the reptile estimator needs a learner whose inner loop is SGD on all "
                     "parameters at a fixed step size (capability 'sgd_from_init', e.g. "
                     "learner.name='reptile')")

  def init(key, theta):
    del key, theta
    return ()

  def estimate(theta, state, key):
    episodes = parallel.shard_tasks(sample_batch(family, key, meta_batch_size), mesh)
    theta_c = jax.lax.stop_gradient(theta)

    def per_task(episode):
      return unroll(learner, theta_c, learner.init_state(theta_c, episode), episode, num_steps)

    adapted_B, curves_BT = jax.vmap(per_task)(episodes)
    grads = {"params": jax.tree.map(lambda p, a: p - jnp.mean(a, axis=0), theta["params"],
                                    adapted_B)}
    return grads, state, {"meta_loss": jnp.mean(objective(curves_BT)),
                          "curve": jnp.mean(curves_BT, axis=0)}

  return MetaGradientEstimator(init, estimate)


ESTIMATORS.register(EstimatorSpec(
    name="reptile", doc="Reptile's meta-update theta - mean(phi_T) (Nichol et al. 2018)",
    build=lambda e, learner, family, objective, batch, steps, mesh: reptile(
        learner, family, objective, batch, steps, mesh),
    needs=frozenset({"sgd_from_init"}), provides=frozenset({"reptile_update"}),
    uses_objective=False))
