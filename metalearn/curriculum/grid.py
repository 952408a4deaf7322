"""The prerequisite grid: a toy curriculum problem where tasks unlock one another.

The test bed of Portelas et al. (2019, section 4 and their code's ``ToyEnv`` in
flowersteam/teachDeepRL), rewritten as pure JAX functions. Rules, as in the reference:

- a ``10 x 10`` grid of cells, each with a competence ``c in {0, ..., 100}``, all 0 at start;
- practising a cell raises its competence by 1 (capped at 100) if the cell is *learnable*, and
  leaves it unchanged otherwise;
- cell ``(0, 0)`` is learnable from the start; cell ``(r, c)`` is learnable once one of its
  *previous* neighbours ``(r - 1, c)``, ``(r, c - 1)``, ``(r - 1, c - 1)`` (those inside the grid)
  has competence ``>= 75``;
- a cell is *mastered* when its competence is ``> 75`` (the reference counts ``> 75`` and
  unlocks at ``>= 75``; we keep both as they are);
- the score the learner reports after practising a cell is its competence scaled to
  ``[0, 1]`` (``c / 100``), as the reference returns it to the teacher.

A teacher's task maps to a cell with :func:`cell_of`: a discrete arm ``i`` is cell
``(i // 10, i % 10)``; a point ``u`` of the unit box is cell ``(floor(10 u_0), floor(10 u_1))``
(clipped to the grid).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

SIZE = 10
MAX_COMPETENCE = 100
UNLOCK = 75  # a previous neighbour with competence >= UNLOCK makes a cell learnable
MASTERED = 75  # a cell with competence > MASTERED is mastered


class GridState(NamedTuple):
  """``competence_RC``: ``int32[size, size]`` competence of every cell, ``0..100``."""
  competence_RC: jax.Array


def init(size: int = SIZE) -> GridState:
  """All cells at competence 0."""
  return GridState(jnp.zeros((size, size), jnp.int32))


def learnable(state: GridState) -> jax.Array:
  """``bool[size, size]``: the cells that practice would improve now."""
  unlocked_RC = state.competence_RC >= UNLOCK
  pad_RC = jnp.pad(unlocked_RC, ((1, 0), (1, 0)))  # pad_RC[r + 1, c + 1] = unlocked_RC[r, c]
  up_RC, left_RC, diag_RC = pad_RC[:-1, 1:], pad_RC[1:, :-1], pad_RC[:-1, :-1]
  first_RC = jnp.zeros_like(unlocked_RC).at[0, 0].set(True)
  return first_RC | up_RC | left_RC | diag_RC


def cell_of(task: jax.Array, size: int = SIZE) -> jax.Array:
  """Flat cell index ``r * size + c`` of a task: an ``int`` arm, or a point of ``[0, 1]^2``."""
  task = jnp.asarray(task)
  if task.ndim == 0:
    return task.astype(jnp.int32)
  if task.shape != (2,):
    raise ValueError(f"a box task on the grid must be a point of [0, 1]^2, got shape "
                     f"{task.shape}")
  rc = jnp.clip(jnp.floor(task * size).astype(jnp.int32), 0, size - 1)
  return rc[0] * size + rc[1]


def practice(state: GridState, cell: jax.Array) -> tuple[GridState, jax.Array]:
  """Practise ``cell`` (flat index): ``(new state, its competence / 100 after practice)``."""
  size = state.competence_RC.shape[0]
  r, c = cell // size, cell % size
  gain = learnable(state)[r, c].astype(jnp.int32)
  value = jnp.minimum(state.competence_RC[r, c] + gain, MAX_COMPETENCE)
  return (GridState(state.competence_RC.at[r, c].set(value)),
          value.astype(jnp.float32) / MAX_COMPETENCE)


def mastered_fraction(state: GridState) -> jax.Array:
  """Fraction of cells with competence ``> 75`` (the reference's score, divided by 100)."""
  return jnp.mean((state.competence_RC > MASTERED).astype(jnp.float32))


def diagonal_order(size: int = SIZE) -> list[int]:
  """A textbook order of the cells: by anti-diagonal ``r + c``, then by row.

  Every cell's previous neighbours lie on earlier anti-diagonals, so a teacher that masters
  each cell before the next never meets a locked cell.
  """
  return sorted(range(size * size), key=lambda i: (i // size + i % size, i // size))
