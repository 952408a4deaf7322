"""The teacher contract: a pure ``init`` / ``propose`` / ``observe`` triple (optax style).

A *teacher* (task sampler, curriculum) decides which task the learner practises next and
learns from the scores it sees. Its state is an explicit pytree, so a teacher runs inside the
jitted, scanned meta-training step, is saved in checkpoints with the rest of the train state,
and a resumed run continues the same curriculum.

A task is either an arm of a discrete set (``int32`` scalar in ``[0, num_tasks)``: a cell of
a grid, a chapter of a textbook) or a point of the unit box (``float32[dims]`` in
``[0, 1]^dims``: continuous task-family parameters such as the dimension and context length of
in-context regression, which the family maps to its own ranges with ``at_task``).

Scores are *higher is better* (an accuracy, a negated loss); a teacher turns them into its own
progress signal (slope, absolute learning progress, ...).
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import jax

from metalearn.registry import Component, Option, Registry

TeacherState = Any  # a pytree


class Teacher(NamedTuple):
  """Picks tasks and learns from their scores.

  Attributes:
    init: ``key -> state``.
    propose: ``(state, key) -> task``: the next task (an ``int32`` arm or a ``float32[dims]``
      point of the unit box). Pure: the same state and key give the same task.
    observe: ``(state, task, score) -> state``: the learner practised ``task`` and now scores
      ``score`` (a float scalar, higher is better) on it.
    space: ``("discrete", num_tasks)`` or ``("box", dims)``: what ``propose`` returns.
  """
  init: Callable[[jax.Array], TeacherState]
  propose: Callable[[TeacherState, jax.Array], jax.Array]
  observe: Callable[[TeacherState, jax.Array, jax.Array], TeacherState]
  space: tuple[str, int]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TeacherSpec(Component):
  """A registered teacher (the config's ``curriculum.name``; its other keys the options).

  Attributes:
    factory: ``factory(size, **options) -> Teacher`` (``size``: the space's arm count or
      dimensions; a factory with ``takes_space`` gets the whole space instead).
    spaces: the task-space kinds it proposes in (``"discrete"``, ``"box"``).
    arms: it picks among discrete arms, so it drives a box-space family through a grid of
      ``grid`` cells per axis (:mod:`metalearn.curriculum.steering`).
    takes_space: ``factory`` takes the space ``(kind, size)`` itself.
  """
  factory: Callable[..., Teacher]
  spaces: tuple[str, ...]
  arms: bool = False
  takes_space: bool = False

  def build(self, options: dict, space: tuple[str, int]) -> Teacher:
    """The teacher over ``space`` with ``options`` (the config group without ``name``)."""
    if self.takes_space:
      return self.factory((space[0], int(space[1])), **options)
    return self.factory(int(space[1]), **options)


TEACHERS: Registry[TeacherSpec] = Registry("teacher", "metalearn.curriculum", TeacherSpec)

# The option of arm teachers driving a box space (see TeacherSpec.arms).
GRID = Option(4, ge=1, doc="cells per axis when the teacher's arms drive a box task space")
