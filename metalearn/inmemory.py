"""Meta-training without a workdir: the whole outer loop as one compiled ``lax.scan``.

For small problems, sweeps over seeds, tests and notebooks, where checkpoints and metrics files
are overhead. :func:`metalearn.train.train` is the resumable, logged, multi-device version of
the same loop.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from metalearn.estimators import MetaGradientEstimator


def meta_train(estimator: MetaGradientEstimator, optimizer: optax.GradientTransformation,
               theta, key: jax.Array, num_steps: int,
               record: Callable = lambda theta, metrics: metrics["meta_loss"]):
  """Runs ``num_steps`` outer steps from ``theta``; returns ``(theta, records)``.

  Step ``s`` uses ``fold_in(key, s)``; an update whose meta-loss or gradient is not finite is
  skipped, as in the meta-trainer. ``record(theta, metrics)`` (after the step's update) is
  stacked over steps: by default the meta-loss.
  """
  k_init, k_steps = jax.random.split(key)

  def step(carry, s):
    theta, opt_state, est_state = carry
    grads, new_est, metrics = estimator.estimate(theta, est_state, jax.random.fold_in(k_steps, s))
    updates, new_opt = optimizer.update(grads, opt_state, theta)
    finite = jnp.isfinite(metrics["meta_loss"]) & jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    carry = keep((optax.apply_updates(theta, updates), new_opt, new_est), carry)
    return carry, record(carry[0], metrics)

  @jax.jit
  def run(theta, k_init):
    carry = (theta, optimizer.init(theta), estimator.init(k_init, theta))
    (theta, _, _), records = jax.lax.scan(step, carry, jnp.arange(num_steps))
    return theta, records

  return run(theta, k_init)
