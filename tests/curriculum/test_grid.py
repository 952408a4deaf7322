"""The prerequisite grid: unlocking rule, mastery count, task -> cell mapping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.curriculum import grid


def _practise(state, r, c, times):
  for _ in range(times):
    state, score = grid.practice(state, jnp.int32(r * 10 + c))
  return state, float(score)


def test_a_cell_improves_only_after_a_previous_neighbour_reaches_75():
  state = grid.init()
  assert float(grid.mastered_fraction(state)) == 0.0
  state, score = _practise(state, 0, 1, 10)  # locked: (0, 0) not yet at 75
  assert score == 0.0 and int(state.competence_RC.sum()) == 0
  state, score = _practise(state, 0, 0, 74)
  assert score == pytest.approx(0.74)
  state, score = _practise(state, 0, 1, 1)
  assert score == 0.0  # still locked at 74
  state, _ = _practise(state, 0, 0, 1)  # (0, 0) at 75: unlocks, but is not yet mastered (> 75)
  assert float(grid.mastered_fraction(state)) == 0.0
  learnable = np.asarray(grid.learnable(state))
  assert learnable[0, 1] and learnable[1, 0] and learnable[1, 1]  # up-left counts too
  assert learnable.sum() == 4 and not learnable[2, 2] and not learnable[0, 2]
  state, score = _practise(state, 1, 1, 1)
  assert score == pytest.approx(0.01)
  state, _ = _practise(state, 0, 0, 1)
  assert float(grid.mastered_fraction(state)) == pytest.approx(0.01)


def test_competence_caps_at_100_and_mastery_counts_cells():
  state, score = _practise(grid.init(), 0, 0, 130)
  assert score == 1.0 and int(state.competence_RC[0, 0]) == 100
  state, _ = _practise(state, 0, 1, 76)
  state, _ = _practise(state, 1, 0, 75)  # exactly 75: unlocked, not mastered
  assert float(grid.mastered_fraction(state)) == pytest.approx(0.02)


def test_tasks_map_to_cells():
  assert int(grid.cell_of(jnp.int32(37))) == 37
  assert int(grid.cell_of(jnp.asarray([0.35, 0.79]))) == 37
  assert int(grid.cell_of(jnp.asarray([1.0, 1.0]))) == 99
  assert int(grid.cell_of(jnp.asarray([0.0, 0.0999]))) == 0
  with pytest.raises(ValueError, match=r"point of \[0, 1\]\^2"):
    grid.cell_of(jnp.zeros(3))


def test_diagonal_order_never_meets_a_locked_cell():
  order = grid.diagonal_order()
  assert sorted(order) == list(range(100))
  position = {cell: i for i, cell in enumerate(order)}
  for cell in order[1:]:
    r, c = divmod(cell, 10)
    previous = [(r - 1) * 10 + c if r else None, r * 10 + c - 1 if c else None]
    assert min(position[p] for p in previous if p is not None) < position[cell]


def test_jitted_scan_of_practice():
  def step(state, cell):
    state, score = grid.practice(state, cell)
    return state, score

  cells = jnp.asarray([0] * 80 + [11] * 30, jnp.int32)
  state, scores = jax.jit(lambda cells: jax.lax.scan(step, grid.init(), cells))(cells)
  assert int(state.competence_RC[0, 0]) == 80 and int(state.competence_RC[1, 1]) == 30
  assert float(scores[-1]) == pytest.approx(0.3)
