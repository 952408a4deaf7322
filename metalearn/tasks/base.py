"""Task families: pure, jittable samplers of learning problems.

A *task family* maps a PRNG key to an :class:`Episode`: a small learning problem with a support
set (what the learner trains on) and a query set (what its learning curve is measured on).
Sampling is a pure function of the key, so a meta-batch of tasks is ``jax.vmap`` over keys and
runs inside ``jit`` with the rest of the outer step.
"""

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp


class Episode(NamedTuple):
  """One sampled task.

  Attributes:
    support_x: inputs the learner adapts on, ``[K, *input_shape]``.
    support_y: targets for ``support_x`` (``[K, output_dim]`` for regression, int labels
      ``[K]`` for classification).
    query_x: held-out inputs the learning curve is measured on, ``[Q, *input_shape]``.
    query_y: targets for ``query_x``.
    info: family-specific task parameters (e.g. amplitude and phase), a dict of arrays.
  """
  support_x: jax.Array
  support_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  info: dict[str, Any]


class TaskFamily(Protocol):
  """What every task family provides.

  A family is a pytree (a registered dataclass): its arrays (e.g. a dataset's images) are
  leaves and its sizes static metadata, so jitted functions take the family as an argument
  instead of embedding its data as compile-time constants.

  A family with a curriculum also has ``at_step(step) -> family``: the trainer calls it with
  the (traced) outer step before sampling, so difficulty follows the step deterministically.
  """

  input_shape: tuple[int, ...]
  output_dim: int
  primary_metric: str  # the key of ``metrics`` that evaluation tables report

  def sample(self, key: jax.Array) -> Episode:
    """Draws one episode; pure and jittable."""

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Scalar loss of ``predictions`` against ``targets`` (one episode, no batch axis)."""

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Scalar evaluation metrics (one episode), including ``primary_metric``."""


def sample_batch(family: TaskFamily, key: jax.Array, batch_size: int) -> Episode:
  """Draws ``batch_size`` independent episodes; every leaf gains a leading batch axis."""
  return jax.vmap(family.sample)(jax.random.split(key, batch_size))


def support_loss(loss_fn: Callable, predictions: jax.Array, targets: jax.Array,
                 info: dict[str, Any]) -> jax.Array:
  """``loss_fn`` on a support set, honouring a steered family's support mask.

  A family whose support size is steered (e.g. :meth:`metalearn.tasks.SinusoidFamily.at_task`)
  keeps its arrays at the largest size and marks the points in use with
  ``info["support_weight"]`` (``float32[K]`` of 0 and 1). The loss is then the mean over the
  marked points of the per-example loss, exactly the loss of the smaller support set:

  .. math::  L = \\sum_k w_k \\ell_k / \\max(1, \\sum_k w_k)

  (``loss_fn`` must be a mean over examples, as every family's is). Without the mask it is
  ``loss_fn(predictions, targets)``.
  """
  w = info.get("support_weight") if isinstance(info, dict) else None
  if w is None:
    return loss_fn(predictions, targets)
  per_example = jax.vmap(lambda p, y: loss_fn(p[None], y[None]))(predictions, targets)
  return jnp.sum(w * per_example) / jnp.maximum(jnp.sum(w), 1.0)
