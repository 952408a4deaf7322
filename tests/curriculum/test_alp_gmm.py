"""ALP-GMM: the ALP signal by hand, EM on planted clusters, proposals chasing planted progress."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.checkpoint import Checkpointer
from metalearn.curriculum import fit_gmm, make_teacher, select_gmm

alp_gmm_module = sys.modules["metalearn.curriculum.alp_gmm"]


def _two_clusters(n=200):
  rng = np.random.default_rng(0)
  a = rng.normal([0.2, 0.2, 0.0], [0.02, 0.03, 0.01], size=(n, 3))
  b = rng.normal([0.8, 0.6, 0.5], [0.03, 0.02, 0.05], size=(n, 3))
  return jnp.asarray(np.concatenate([a, b]), jnp.float32)


def test_alp_is_the_gap_to_the_nearest_past_task():
  teacher = make_teacher("alp_gmm", ("box", 2), min_history=3, k_max=2)
  state, observe = teacher.init(jax.random.key(0)), jax.jit(teacher.observe)
  episodes = [((0.1, 0.1), 0.5), ((0.9, 0.9), 0.2), ((0.5, 0.4), 0.3),
              ((0.8, 0.8), 0.6),   # nearest (0.9, 0.9): |0.6 - 0.2| = 0.4
              ((0.2, 0.0), 0.1),   # nearest (0.1, 0.1): |0.1 - 0.5| = 0.4
              ((0.45, 0.4), 0.9)]  # nearest (0.5, 0.4): |0.9 - 0.3| = 0.6
  for task, score in episodes:
    state = observe(state, jnp.asarray(task), score)
  np.testing.assert_allclose(state.window_x_WE[:6, 2], [0, 0, 0, 0.4, 0.4, 0.6], atol=1e-6)
  np.testing.assert_allclose(state.window_x_WE[:6, :2], [t for t, _ in episodes], atol=1e-6)
  assert int(state.count) == 6 and not bool(state.fitted)
  h = jnp.asarray([[0.0, 1.0, 0.5], [0.0, 1.0, 0.5]])  # tasks dimension-major
  assert float(alp_gmm_module.nearest_alp(h, jnp.asarray([0.1, 0.7, 0.0]), 2,
                                          jnp.asarray([0.9, 0.9]), 0.2, 1)) == \
      np.float32(0.5)  # the third slot is beyond count and ignored: nearest is (1, 1)


def test_em_recovers_two_planted_clusters():
  x = _two_clusters()
  gmm, ll = jax.jit(lambda k: fit_gmm(k, x, jnp.ones(400, bool), 2, 4))(jax.random.key(1))
  active = np.asarray(gmm.weights_K) > 0
  assert active.tolist() == [True, True, False, False] and np.isfinite(float(ll))
  order = np.argsort(np.asarray(gmm.means_KD)[:2, 0])
  np.testing.assert_allclose(np.asarray(gmm.means_KD)[:2][order],
                             [[0.2, 0.2, 0.0], [0.8, 0.6, 0.5]], atol=0.01)
  np.testing.assert_allclose(np.asarray(gmm.weights_K)[:2], 0.5, atol=0.01)
  stds = np.sqrt(np.diagonal(np.asarray(gmm.covs_KDD)[:2][order], axis1=1, axis2=2))
  np.testing.assert_allclose(stds, [[0.02, 0.03, 0.01], [0.03, 0.02, 0.05]], rtol=0.2)


def test_model_selection_picks_two_and_ignores_masked_rows():
  x = _two_clusters()
  gmm, crit = jax.jit(lambda k: select_gmm(k, x, jnp.ones(400, bool), k_min=1, k_max=4,
                                           criterion="bic"))(jax.random.key(0))
  assert int(np.argmin(np.asarray(crit))) + 1 == 2
  assert int((np.asarray(gmm.weights_K) > 0).sum()) == 2
  fit = jax.jit(lambda x, valid: fit_gmm(jax.random.key(1), x, valid, 2, 4))
  valid = jnp.arange(450) < 400
  a, _ = fit(jnp.concatenate([x, jnp.full((50, 3), 7.0)]), valid)
  b, _ = fit(jnp.concatenate([x, jnp.zeros((50, 3))]), valid)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(u, v, atol=1e-6)


def _planted_region_runner(teacher, episodes):
  """A jitted run on a box where only tasks in [0.5, 0.75] x [0.25, 0.5] keep changing score
  (the number of visits there / 200, modulo 1); elsewhere the score is constant 0.5."""

  def step(carry, key):
    state, visits = carry
    task = teacher.propose(state, key)
    inside = (task[0] >= 0.5) & (task[0] < 0.75) & (task[1] >= 0.25) & (task[1] < 0.5)
    visits = visits + inside
    score = jnp.where(inside, (visits / 200.0) % 1.0, 0.5)
    return (teacher.observe(state, task, score), visits), (task, inside)

  return jax.jit(lambda key: jax.lax.scan(step, (teacher.init(key), jnp.zeros((), jnp.int32)),
                                          jax.random.split(key, episodes)))


@pytest.fixture(scope="module")
def planted():
  teacher = make_teacher("alp_gmm", ("box", 2))  # the reference's defaults
  run = _planted_region_runner(teacher, 1500)
  (state, _), (tasks, inside) = run(jax.random.key(0))
  return teacher, run, state, np.asarray(tasks), np.asarray(inside)


def test_proposals_concentrate_where_progress_is(planted):
  _, run, state, tasks, inside = planted
  assert bool(state.fitted) and tasks.min() >= 0 and tasks.max() <= 1
  assert inside[:250].mean() < 0.15  # bootstrap: uniform (the region is 1/16 of the box)
  assert inside[500:].mean() > 0.5, inside[500:].mean()
  (_, _), (tasks_again, _) = run(jax.random.key(0))  # same key, same curriculum
  np.testing.assert_array_equal(tasks, tasks_again)
  (_, _), (tasks_other, _) = run(jax.random.key(1))
  assert not np.array_equal(tasks, tasks_other)


def test_state_round_trips_through_the_checkpointer(planted, tmp_path):
  teacher, _, state, _, _ = planted
  ckpt = Checkpointer(tmp_path / "ckpt", 2)
  ckpt.save(1, state)
  ckpt.wait()
  restored = ckpt.restore(1, jax.tree.map(jnp.zeros_like, state))
  ckpt.close()
  assert isinstance(restored, type(state))
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(x, y)
  key, propose = jax.random.key(5), jax.jit(teacher.propose)  # one program, not op by op
  np.testing.assert_array_equal(propose(state, key), propose(restored, key))
