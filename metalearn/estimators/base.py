"""The meta-gradient estimator contract (a pure ``init`` / ``estimate`` pair, optax style) and
the estimator registry.

An estimator's module registers an :class:`EstimatorSpec` in :data:`ESTIMATORS` (the config's
``estimator.name``): its options, how it is built, what it needs from the learner (capabilities
of :mod:`metalearn.learners.base`: ``"stepwise"``, ``"sgd_from_init"``) and what it provides
(``"reptile_update"``: the meta-update is Reptile's, not a gradient).
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import ml_collections

from metalearn.registry import Component, ConfigError, Option, Registry

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class EstimatorSpec(Component):
  """A registered estimator.

  Attributes:
    build: ``(estimator_config, learner, family, objective, meta_batch_size, num_steps, mesh)
      -> MetaGradientEstimator``.
    needs: learner capabilities it needs.
    provides: what it gives learners that need it (``"reptile_update"``).
    truncated: it advances persistent tasks ``truncation_length`` steps per outer step, so
      tasks live across outer steps (a teacher cannot score them) and the horizon must be a
      multiple of ``truncation_length``.
    uses_objective: its update follows the meta-objective (Reptile's does not).
  """
  build: Callable
  needs: frozenset[str] = frozenset()
  provides: frozenset[str] = frozenset()
  truncated: bool = False
  uses_objective: bool = True


ESTIMATORS: Registry[EstimatorSpec] = Registry("estimator", "metalearn.estimators",
                                               EstimatorSpec)

TRUNCATION = Option(1, ge=1, doc="K, inner steps per segment (per outer step)")
SIGMA = Option(0.01, gt=0, doc="perturbation scale")


def check_truncation(num_steps: int, truncation_length: int, what: str = "num_steps") -> None:
  """A truncated estimator cuts the horizon into whole segments."""
  if num_steps % truncation_length:
    divisors = [d for d in range(1, num_steps + 1) if num_steps % d == 0]
    raise ConfigError(f"{what} ({num_steps}) must be a multiple of estimator.truncation_length "
                      f"({truncation_length}): set estimator.truncation_length to one of "
                      f"{divisors}")


def check_truncated_config(config: ml_collections.ConfigDict) -> None:
  """The ``check`` of truncated estimators: the learner's horizon divides into segments."""
  from metalearn.learners.base import LEARNERS  # pylint: disable=g-import-not-at-top
  steps = LEARNERS.get(config.learner.name).inner_steps(config)
  check_truncation(steps, config.estimator.truncation_length,
                   f"the inner steps of learner {config.learner.name!r} on this task")
