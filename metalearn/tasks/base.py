"""Task families: pure, jittable samplers of learning problems.

A *task family* maps a PRNG key to an :class:`Episode`: a small learning problem with a support
set (what the learner trains on) and a query set (what its learning curve is measured on).
Sampling is a pure function of the key, so a meta-batch of tasks is ``jax.vmap`` over keys and
runs inside ``jit`` with the rest of the outer step.
"""

from typing import Any, NamedTuple, Protocol

import jax


class Episode(NamedTuple):
  """One sampled task.

  Attributes:
    support_x: inputs the learner adapts on, ``[K, input_dim]``.
    support_y: targets for ``support_x``, ``[K, output_dim]``.
    query_x: held-out inputs the learning curve is measured on, ``[Q, input_dim]``.
    query_y: targets for ``query_x``, ``[Q, output_dim]``.
    info: family-specific task parameters (e.g. amplitude and phase), a dict of arrays.
  """
  support_x: jax.Array
  support_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  info: dict[str, Any]


class TaskFamily(Protocol):
  """What every task family provides."""

  input_dim: int
  output_dim: int

  def sample(self, key: jax.Array) -> Episode:
    """Draws one episode; pure and jittable."""

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Scalar loss of ``predictions`` against ``targets`` (one episode, no batch axis)."""


def sample_batch(family: TaskFamily, key: jax.Array, batch_size: int) -> Episode:
  """Draws ``batch_size`` independent episodes; every leaf gains a leading batch axis."""
  return jax.vmap(family.sample)(jax.random.split(key, batch_size))
