"""Steering meta-training with a teacher: the family's task space, the teacher's, and the map.

A family a teacher can drive declares ``task_space`` (``("box", dims)`` or ``("discrete", n)``)
and ``at_task(task) -> family`` (e.g. :meth:`metalearn.tasks.RegressionPrompts.at_task`: the
dimension and context length of in-context regression). Teachers that pick among arms (fixed
order, TSCL, Exp3.S) drive a box family through a grid of ``grid`` cells per axis, arm ``a``
standing for the centre of its cell (row-major, the last axis fastest).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from metalearn.curriculum.base import Teacher

ARM_TEACHERS = ("fixed", "tscl", "exp3s")  # teachers that pick among discrete arms


class Steering(NamedTuple):
  """A teacher and the map from its tasks to the family's (``to_family_task``)."""
  teacher: Teacher
  to_family_task: Callable[[jax.Array], jax.Array]


def grid_centre(arm: jax.Array, grid: int, dims: int) -> jax.Array:
  """The centre of cell ``arm`` of a ``grid``-per-axis grid of the unit box, ``float32[dims]``
  (row-major: the last axis varies fastest)."""
  digits = [(arm // grid ** (dims - 1 - i)) % grid for i in range(dims)]
  return (jnp.stack(digits).astype(jnp.float32) + 0.5) / grid


def make_steering(name: str, family, grid: int = 4, **options) -> Steering:
  """Builds the teacher ``name`` for ``family`` (which must have ``task_space`` and
  ``at_task``); ``options`` go to :func:`metalearn.curriculum.make_teacher`."""
  from metalearn.curriculum import make_teacher  # the package imports this module
  if not hasattr(family, "at_task"):
    raise ValueError(f"a teacher needs a task family it can steer (one with task_space and "
                     f"at_task, e.g. icl_regression); {type(family).__name__} has none: set "
                     "curriculum.teacher=''")
  kind, size = family.task_space
  if kind == "box" and name in ARM_TEACHERS:
    teacher = make_teacher(name, ("discrete", grid ** size), **options)
    return Steering(teacher, lambda arm: grid_centre(arm, grid, size))
  return Steering(make_teacher(name, (kind, size), **options), lambda task: task)
