"""The meta-gradient estimator contract: a pure ``init`` / ``estimate`` pair (optax style)."""

from typing import Any, Callable, NamedTuple

import jax

EstimatorState = Any  # a pytree


class MetaGradientEstimator(NamedTuple):
  """Estimates the gradient of the meta-objective with respect to ``theta``.

  Attributes:
    init: ``(key, theta) -> state``: estimator state (e.g. persistent inner states).
    estimate: ``(theta, state, key) -> (grads, state, metrics)``; ``grads`` has the structure
      of ``theta``; ``metrics`` holds at least ``meta_loss`` (scalar) and ``curve`` (the mean
      learning curve over the meta-batch, ``[T + 1]`` or the segment's length).
  """
  init: Callable[[jax.Array, Any], EstimatorState]
  estimate: Callable[[Any, EstimatorState, jax.Array], tuple[Any, EstimatorState, dict]]
