"""Parametric families of training tasks: architectures and training settings drawn at random.

A learned optimizer meta-trained on one network learns that network. Like learned_optimization's
parametric tasks, :func:`sample_classification` draws a *family* (width, depth, activation,
batch size, initialisation scale, data kind) from a host-side generator; every family it
returns is an ordinary :class:`~metalearn.tasks.training.ClassificationTraining` whose tasks are
sampled and vmapped inside ``jit``. Shapes differ across families, so a meta-batch comes from
one family; :func:`sample_quadratic` does the same for the dimension of quadratics.
"""

import numpy as np

from metalearn.tasks.quadratic import QuadraticTraining
from metalearn.tasks.training import ACTIVATIONS, ClassificationTraining

WIDTHS = (16, 32, 64, 128)
DEPTHS = (1, 2, 3)
BATCH_SIZES = (32, 64, 128, 256)


def sample_classification(rng: np.random.Generator, network: str = "mlp",
                          data: tuple[str, ...] = ("gaussian_mixture", "teacher"),
                          init_scale: tuple[float, float] = (0.5, 2.0)
                          ) -> ClassificationTraining:
  """A random classification-training family: per-layer widths from :data:`WIDTHS`, depth
  from :data:`DEPTHS`, any of :data:`~metalearn.tasks.training.ACTIVATIONS`, a batch size
  from :data:`BATCH_SIZES`, a log-uniform ``init_scale`` and one of the ``data`` kinds."""
  depth = int(rng.choice(DEPTHS))
  return ClassificationTraining(
      data=str(rng.choice(data)), network=network,
      hidden=tuple(int(w) for w in rng.choice(WIDTHS, depth)),
      activation=str(rng.choice(sorted(ACTIVATIONS))),
      batch_size=int(rng.choice(BATCH_SIZES)),
      init_scale=float(np.exp(rng.uniform(*np.log(init_scale)))))


def sample_quadratic(rng: np.random.Generator, dims=(2, 4, 8, 16, 32, 64)) -> QuadraticTraining:
  """A quadratic family of random dimension (from ``dims``) and batch size."""
  return QuadraticTraining(dim=int(rng.choice(dims)), batch_size=int(rng.choice(BATCH_SIZES)))


def describe(family) -> str:
  """A short, stable name of a family's settings (for tables and cache keys)."""
  if isinstance(family, QuadraticTraining):
    return f"quadratic(d={family.dim}, B={family.batch_size})"
  return (f"{family.network}{list(family.hidden)}-{family.activation} on {family.data}, "
          f"B={family.batch_size}, init x{family.init_scale:.2g}")
