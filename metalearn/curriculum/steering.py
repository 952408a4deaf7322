"""Steering meta-training with a teacher: the family's task space, the teacher's, and the map.

A family a teacher can drive declares ``task_space`` (``("box", dims)`` or ``("discrete", n)``)
and ``at_task(task) -> family`` (e.g. :meth:`metalearn.tasks.RegressionPrompts.at_task`: the
dimension and context length of in-context regression). Teachers that pick among arms (fixed
order, TSCL, Exp3.S; :attr:`~metalearn.curriculum.base.TeacherSpec.arms`) drive a box family
through a grid of ``grid`` cells per axis, arm ``a`` standing for the centre of its cell
(row-major, the last axis fastest).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from metalearn.curriculum.base import TEACHERS, Teacher
from metalearn.registry import complete


class Steering(NamedTuple):
  """A teacher and the map from its tasks to the family's (``to_family_task``)."""
  teacher: Teacher
  to_family_task: Callable[[jax.Array], jax.Array]


def grid_centre(arm: jax.Array, grid: int, dims: int) -> jax.Array:
  """The centre of cell ``arm`` of a ``grid``-per-axis grid of the unit box, ``float32[dims]``
  (row-major: the last axis varies fastest)."""
  digits = [(arm // grid ** (dims - 1 - i)) % grid for i in range(dims)]
  return (jnp.stack(digits).astype(jnp.float32) + 0.5) / grid


def make_steering(curriculum: str | ml_collections.ConfigDict | dict, family,
                  **options) -> Steering:
  """The teacher for ``family``, which must declare a ``task_space``: ``curriculum`` is a
  ``curriculum`` config group (``name`` and its options) or a teacher's name with its options
  as keywords (``make_steering("tscl", family, grid=3)``). Options left out take the teacher's
  defaults; an unknown one raises :class:`~metalearn.registry.ConfigError`."""
  group = dict(name=curriculum, **options) if isinstance(curriculum, str) else dict(curriculum)
  spec = TEACHERS.get(group["name"], "curriculum.name")
  options = complete(ml_collections.ConfigDict(group), spec.options, "curriculum",
                     f"teacher {spec.name!r}").to_dict()
  if family.task_space is None:
    raise ValueError(f"a teacher needs a task family it can steer (one with a task_space, e.g. "
                     f"icl_regression); {type(family).__name__} has none: set "
                     "curriculum.name=''")
  kind, size = family.task_space
  grid = options.pop("grid", None)
  if kind == "box" and spec.arms:
    teacher = spec.build(options, ("discrete", grid ** size))
    return Steering(teacher, lambda arm: grid_centre(arm, grid, size))
  return Steering(spec.build(options, (kind, size)), lambda task: task)
