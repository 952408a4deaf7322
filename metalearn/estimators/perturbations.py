"""Shared pieces of the evolution-strategies estimators: perturbations and masked averages."""

import jax
import jax.numpy as jnp


def gaussian_like(tree, key: jax.Array, sigma: float):
  """:math:`\\epsilon \\sim N(0, \\sigma^2 I)` shaped like ``tree``."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([sigma * jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
                            for k, x in zip(keys, leaves)])


def antithetic(theta, eps_B):
  """``[2B]`` meta-parameters ``theta + eps_b`` (first ``B``) then ``theta - eps_b``."""
  return jax.tree.map(lambda t, e: jnp.concatenate([t + e, t - e]), theta, eps_B)


def tile2(tree):
  """Repeats every leaf's leading axis twice (the task of pair ``b`` for both signs)."""
  return jax.tree.map(lambda a: jnp.concatenate([a, a]), tree)


def weighted_sum(weights_B: jax.Array, tree_B, count: jax.Array):
  """:math:`\\frac{1}{n}\\sum_b w_b x_b` over the leading axis of every leaf."""
  return jax.tree.map(lambda x: jnp.tensordot(weights_B, x, axes=1) / jnp.maximum(count, 1),
                      tree_B)


def finite_pairs(objectives_2B: jax.Array, curves_2B: jax.Array) -> jax.Array:
  """``bool[B]``: both trajectories of a pair have a finite objective and curve."""
  ok = jnp.isfinite(objectives_2B) & jnp.all(
      jnp.isfinite(curves_2B.reshape(curves_2B.shape[0], -1)), axis=1)
  B = ok.shape[0] // 2
  return ok[:B] & ok[B:]


def pair_summary(objectives_2B, curves_2B, good_B) -> dict:
  """Meta-loss and mean curve over the finite pairs (NaN when none is finite, so that the
  meta-trainer skips the update), and how many pairs were excluded."""
  B = good_B.shape[0]
  good_2B = jnp.concatenate([good_B, good_B])
  n = 2 * jnp.sum(good_B)
  safe = lambda x, m: jnp.where(m, x, 0.0)
  mean_obj = jnp.sum(safe(objectives_2B, good_2B)) / n
  curve = jnp.sum(safe(curves_2B, good_2B[:, None]), axis=0) / n
  return {"meta_loss": mean_obj, "curve": curve,
          "nonfinite_trajectories": (B - jnp.sum(good_B)).astype(jnp.int32)}
