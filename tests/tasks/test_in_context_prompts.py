"""Prompt families of in-context learners: priors, curriculum, pools, projected tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.tasks import ProjectedClassification, RegressionPrompts
from tests.conftest import sample_tasks


@pytest.mark.parametrize("function_class,x_dist", [
    ("linear", "normal"), ("sparse_linear", "normal"), ("relu_net", "normal"),
    ("decision_tree", "normal"), ("linear", "uniform")])
def test_prompt_variance_matches_the_normaliser(function_class, x_dist):
  family = RegressionPrompts.create(function_class, 6, 8, x_dist=x_dist)
  prompts = sample_tasks(family, jax.random.key(0), 4000)
  assert prompts.support_x.shape == (4000, 8, 6) and prompts.support_y.shape == (4000, 8)
  ratio = float(jnp.var(prompts.support_y)) / family.normaliser
  assert 0.9 < ratio < 1.1, ratio  # predicting 0 scores a normalised error of about 1


def test_sparse_linear_has_sparsity_nonzeros_and_pool_tasks_come_from_the_pool():
  sparse = sample_tasks(RegressionPrompts.create("sparse_linear", 10, 5), jax.random.key(1), 50)
  np.testing.assert_array_equal(np.sum(np.asarray(sparse.info["w"]) != 0, axis=1), 3)
  pool = RegressionPrompts.create("linear_pool", 4, 5, pool_size=3, noise_std=0.5)
  ws = np.asarray(sample_tasks(pool, jax.random.key(2), 60).info["w"])
  distances = np.abs(ws[:, None] - np.asarray(pool.pool_w)[None]).sum(-1).min(1)
  np.testing.assert_allclose(distances, 0.0)
  assert len(np.unique(ws.round(5), axis=0)) == 3
  # the pool is fixed by pool_seed, so two builds agree
  np.testing.assert_array_equal(pool.pool_w, RegressionPrompts.create(
      "linear_pool", 4, 5, pool_size=3).pool_w)


def test_curriculum_grows_dims_and_points_and_zeroes_inactive_inputs():
  family = RegressionPrompts.create("linear", 20, 41, curriculum=(5, 1, 11, 2, 2000))
  assert (int(family.active_dims), int(family.active_points)) == (5, 11)
  later = family.at_step(jnp.int32(4100))  # two increments
  assert (int(later.active_dims), int(later.active_points)) == (7, 15)
  end = family.at_step(10**7)
  assert (int(end.active_dims), int(end.active_points)) == (20, 41)
  episode = later.sample(jax.random.key(0))
  x = np.asarray(episode.support_x)
  assert np.all(x[:, 7:] == 0) and np.all(x[:, :7] != 0)
  assert int(episode.info["points"]) == 15


def test_out_of_distribution_prompts():
  family = RegressionPrompts.create("linear", 6, 8)
  key = jax.random.key(3)
  base = sample_tasks(family, key, 2000).support_x
  scaled = sample_tasks(family.out_of_distribution("scaled_x"), key, 2000).support_x
  np.testing.assert_allclose(scaled, 2 * base, rtol=1e-5)
  skewed = sample_tasks(family.out_of_distribution("skewed_covariance"), key, 4000).support_x
  eig = np.linalg.eigvalsh(np.cov(np.asarray(skewed).reshape(-1, 6).T))[::-1]
  assert eig[0] / eig[-1] > 15  # 1/i^2 spectrum: ratio 36 in expectation
  np.testing.assert_allclose(eig.sum(), 6, rtol=0.1)
  with pytest.raises(ValueError, match="unknown out-of-distribution"):
    family.out_of_distribution("rotated")


def test_projected_classification_has_num_tasks_distinct_tasks():
  family = ProjectedClassification.create(num_tasks=3, num_points=12, num_classes=4, dim=8,
                                          pool_size=200)
  prompts = sample_tasks(family, jax.random.key(0), 64)
  tasks = np.asarray(prompts.info["task"])
  assert set(tasks.tolist()) == {0, 1, 2}
  base_x, base_y = np.asarray(family.base_x), np.asarray(family.base_y)
  for i in range(64):  # every prompt is its task's projection and permutation of base examples
    proj, perm = (np.asarray(a) for a in family.task(jnp.int32(tasks[i])))
    idx = np.asarray(prompts.info["base_index"][i])
    np.testing.assert_allclose(prompts.support_x[i], base_x[idx] @ proj, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(prompts.support_y[i], perm[base_y[idx]])
  assert np.asarray(prompts.support_y).max() < 4
  # unseen tasks: fresh projections, none of the three seen ones
  unseen = sample_tasks(family.with_tasks(0), jax.random.key(1), 8)
  assert np.all(np.asarray(unseen.info["task"]) == -1)
  seen = [np.asarray(family.task(jnp.int32(t))[0]) for t in range(3)]
  for i in range(8):
    idx = np.asarray(unseen.info["base_index"][i])
    for proj in seen:
      assert not np.allclose(unseen.support_x[i], base_x[idx] @ proj, atol=1e-3)
