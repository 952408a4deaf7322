"""The meta-objective contract and registry.

An objective maps a learning curve ``[..., T + 1]`` (query losses ``L_0 .. L_T``) to a scalar
per task ``[...]`` that meta-training minimises; average over tasks outside. A *time-aware*
objective weighs each step by its place in the whole run, so it also takes where a segment
starts and the run's length (``start``, ``horizon``): truncated estimators score segments
with :func:`score`.

An objective's module registers an :class:`ObjectiveSpec` in :data:`OBJECTIVES` (the config's
``objective.name``, its other keys the objective's options).
"""

import dataclasses
from typing import Any, Callable

import jax
import ml_collections

from metalearn.registry import Component, Registry


# The curve entries an objective's gradient reaches (Objective.gradient_reads).
GRADIENT_READS = ("all", "steps", "final")


@dataclasses.dataclass(frozen=True)
class Objective:
  """An objective with its options bound: ``objective(curve, start=0, horizon=None)``.

  Attributes:
    fn: ``fn(curve, **options)``, or ``fn(curve, start, horizon, **options)`` when
      ``time_aware``.
    options: ``((name, value), ...)``.
    time_aware: see the module docstring.
    gradient_reads: the curve entries its gradient reaches (:data:`GRADIENT_READS`):
      ``"all"``; ``"steps"``, every entry but the first (it ignores ``L_0`` or holds it
      constant); ``"final"``, only the last. Estimators measure the other entries as
      constants (``metalearn.unroll.unroll``, ``differentiate``): their zero cotangents would
      otherwise still cost a backward pass through each of those measurements.
      tests/test_objectives.py checks every registered declaration against autodiff.
  """
  fn: Callable
  options: tuple[tuple[str, Any], ...] = ()
  time_aware: bool = False
  gradient_reads: str = "all"

  def __post_init__(self):
    if self.gradient_reads not in GRADIENT_READS:
      raise ValueError(f"gradient_reads must be one of {GRADIENT_READS}, got "
                       f"{self.gradient_reads!r}")

  def __call__(self, curve: jax.Array, start=0, horizon: int | None = None) -> jax.Array:
    if self.time_aware:
      return self.fn(curve, start=start, horizon=horizon, **dict(self.options))
    return self.fn(curve, **dict(self.options))


def as_objective(objective) -> Objective:
  """``objective`` as an :class:`Objective` (a plain ``curve -> scalar`` function is one that
  is not time-aware)."""
  return objective if isinstance(objective, Objective) else Objective(objective)


def score(objective, curve: jax.Array, start, horizon: int) -> jax.Array:
  """``objective`` of a segment of a run: the segment's first entry is step ``start`` (traced
  is fine) of a ``horizon``-step run. Time-aware objectives get both; the others see the
  segment as a curve."""
  return as_objective(objective)(curve, start=start, horizon=horizon)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObjectiveSpec(Component):
  """A registered objective: ``fn`` with the spec's options as keyword arguments
  (``time_aware`` and ``gradient_reads`` as in :class:`Objective`)."""
  fn: Callable
  time_aware: bool = False
  gradient_reads: str = "all"

  def build(self, config: ml_collections.ConfigDict | None = None) -> Objective:
    """The objective with the options of an ``objective`` config group (defaults for those
    it leaves out)."""
    values = {k: o.default for k, o in self.options.items()}
    if config is not None:
      values.update({k: config[k] for k in self.options if k in config})
    return Objective(self.fn, tuple(sorted(values.items())), self.time_aware,
                     self.gradient_reads)


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective", "metalearn.objectives",
                                               ObjectiveSpec)


def get_objective(name: str, **options) -> Objective:
  """The objective ``name`` with ``options`` bound; options it does not take are ignored, so
  one dict can hold the options of several objectives."""
  spec = OBJECTIVES.get(name)
  return spec.build(ml_collections.ConfigDict(
      {k: v for k, v in options.items() if k in spec.options}))
