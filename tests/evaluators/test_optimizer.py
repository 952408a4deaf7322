"""Learned-optimizer evaluation: smoothing, the VeLO-style speedup, bars, evaluation sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment
from metalearn.evaluators import optimizer as le
from metalearn.learners import OptimizerLearner
from tests.conftest import sample_tasks


def test_smooth_is_a_trailing_mean():
  c = np.arange(10.0)
  s = le.smooth(c, window=3)
  np.testing.assert_allclose(s[:3], [0.0, 0.5, 1.0])
  np.testing.assert_allclose(s[3:], (c[1:-2] + c[2:-1] + c[3:]) / 3)


def test_speedup_counts_adam_steps_to_the_learners_final_loss():
  T = 100
  t = np.arange(T + 1.0)
  adam = 1.0 / (1.0 + t / 10)  # reaches 0.5 at step 10, 0.25 at 30
  fast = np.full(T + 1, 0.25)  # the learner's final loss: Adam needs ~30+ steps (smoothed)
  slow = np.full(T + 1, 0.01)  # below anything Adam reaches: infinite speedup
  s = le.speedup(np.stack([fast, slow]), np.stack([adam, adam]))
  assert 0.3 <= s[0] <= 0.45 and np.isinf(s[1])


def test_bars_read_the_results():
  base = {"per_lr": {"0.001": {"learned_wins_final_valid": 9},
                     "0.0032": {"learned_wins_final_valid": 7}},
          "tuned_mean_train": 0.3, "tuned_lr_mean_train": 0.01}
  results = {"num_tasks": 10, "report_lrs": [1e-3, 3.2e-3], "sets": {
      "in_family": {"learned": {"mean_train": 0.5}, "baselines": {"adam": base}},
      "long_horizon": {"horizon": 500, "learned": {"diverged": 0, "ends_above_start": 0}}}}
  met = [ok for _, ok, _ in le.bars(results)]
  assert met == [True, False, True, True]


def test_evaluation_sets_follow_the_config():
  c = config_lib.default_config("classification_training", "none", "mlp_lopt")
  c.eval.ood = ("wider", "deeper", "other_data", "long_horizon")
  sets = le.evaluation_sets(c, experiment.make_family(c))
  assert sets["wider"][0].hidden == (128,) and sets["deeper"][0].hidden == (32, 32, 32)
  assert sets["other_data"][0].data == "teacher"  # the family is a Gaussian mixture
  assert sets["long_horizon"][1] == 5 * sets["in_family"][1]


def test_omniglot_evaluation_set_splits_each_characters_drawings(omniglot_dir):
  c = config_lib.default_config("classification_training", "none", "mlp_lopt")
  c.eval.ood = ("omniglot_data",)
  family, horizon = le.evaluation_sets(c, experiment.make_family(c))["omniglot_data"]
  assert family.images.shape == (2, 140, 8, 8, 1)  # 10 characters x (14 train | 6 valid) drawings
  np.testing.assert_array_equal(family.counts, [140, 60])
  assert sorted(np.unique(np.asarray(family.labels[0]))) == list(range(10))
  assert horizon == c.learner.num_inner_steps


def test_a_horizon_run_in_segments_gives_the_numbers_of_one_unroll():
  c = config_lib.default_config("classification_training", "none", "mlp_lopt")
  c.task.update(hidden=(8,), batch_size=8)
  c = config_lib.validate(c)
  exp = experiment.build(c)
  tasks = sample_tasks(exp.family, jax.random.key(1), 3)
  # two settings of the learned optimizer, which reads the horizon from its state
  thetas = jax.tree.map(lambda *a: jnp.stack(a), *(exp.learner.init(jax.random.key(i))
                                                  for i in range(2)))
  learner = OptimizerLearner(exp.family, exp.learner.rule, 12)
  whole = le.trajectories(learner, thetas, tasks, 12, 2)
  parts = le.trajectories(learner, thetas, tasks, 12, 2, segment=4)
  assert whole[0].shape == parts[0].shape == (2, 3, 13)
  for a, b in zip(whole, parts):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
  assert not np.allclose(whole[0][0], whole[0][1])  # the two settings train differently
  with pytest.raises(ValueError, match="not a multiple of segment=5"):
    le.trajectories(learner, thetas, tasks, 12, 2, segment=5)
