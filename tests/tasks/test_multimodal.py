import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import evaluators, train
from metalearn.registry import ConfigError
from metalearn.tasks import sample_batch
from metalearn.tasks.multimodal import MODES, MultimodalRegressionFamily
from tests.conftest import ROOT, meta_train_tiny

CONFIG = config_lib.load_config_module(str(ROOT / "experiments/configs/multimodal.py"))


def _sample(family, n=3000, seed=0):
  return jax.jit(lambda k: sample_batch(family, k, n))(jax.random.key(seed))


def test_modes_are_drawn_uniformly_and_each_follows_its_prior():
  eps = _sample(MultimodalRegressionFamily(noise_std=0.0, num_support=4, num_query=2))
  mode, a, b, c = (np.asarray(eps.info[k]) for k in ("mode", "a", "b", "c"))
  counts = np.bincount(mode, minlength=len(MODES))
  assert counts.min() > 0.17 * len(mode) and counts.max() < 0.23 * len(mode)
  sinusoid, line, quadratic = (mode == MODES.index(m) for m in ("sinusoid", "line", "quadratic"))
  assert 0.1 <= a[sinusoid].min() and a[sinusoid].max() <= 5.0 and (b[sinusoid] == 0).all()
  assert 0 <= c[sinusoid].min() and c[sinusoid].max() <= np.pi
  assert -3 <= a[line].min() < -2.5 and 2.5 < a[line].max() <= 3 and (c[line] == 0).all()
  assert ((0.02 <= np.abs(a[quadratic])) & (np.abs(a[quadratic]) <= 0.15)).all()
  assert (a[quadratic] < 0).any() and (a[quadratic] > 0).any()
  # Noiseless: the observed points are the target function of each task's own mode.
  expected = jax.vmap(MultimodalRegressionFamily(noise_std=0.0).target)(eps.info, eps.query_x)
  np.testing.assert_allclose(eps.query_y, expected, rtol=1e-6, atol=1e-6)
  x0 = np.asarray(eps.support_x[line, 0, 0])
  np.testing.assert_allclose(eps.support_y[line, 0, 0], a[line] * x0 + b[line], rtol=1e-5,
                             atol=1e-5)


def test_noise_has_the_configured_scale():
  family = MultimodalRegressionFamily(noise_std=0.3)
  eps = _sample(family)
  residual = eps.support_y - jax.vmap(family.target)(eps.info, eps.support_x)
  assert abs(float(jnp.std(residual)) - 0.3) < 0.01


def test_a_teachers_arm_fixes_the_mode_and_compiles_once():
  family = MultimodalRegressionFamily(modes=("line", "tanh"))
  assert family.task_space == ("discrete", 2)
  sample = jax.jit(lambda f, k: sample_batch(f, k, 200))
  for arm in (0, 1):
    assert set(np.asarray(sample(family.at_task(arm), jax.random.key(1)).info["mode"])) == {arm}
  assert sample._cache_size() == 1  # the arm is data, not a new program
  with pytest.raises(ValueError, match="modes"):
    MultimodalRegressionFamily(modes=("line", "cubic"))


def test_config_names_a_wrong_mode_and_its_choices():
  c = CONFIG.get_config("tiny")
  c.task.modes = ("line", "cubic")
  with pytest.raises(ConfigError, match="task.modes.*sinusoid"):
    config_lib.validate(c)


def _check_meta_learned(results):
  meta, scratch = results["methods"]["meta"]["mse"], results["methods"]["random_init"]["mse"]
  assert np.isfinite(meta).all() and meta[-1] < meta[0]
  assert meta[1] < scratch[1]  # 200 meta-steps already beat learning from a random network


def test_tiny_meta_trains_and_evaluates_through_the_binary_in_its_stated_time(tmp_path):
  meta_train_tiny("multimodal.py", "tiny", tmp_path)
  results = json.loads((tmp_path / "eval.json").read_text())
  assert results["checkpoint_step"] == CONFIG.get_config("tiny").num_steps
  _check_meta_learned(results)


def test_tiny_with_a_teacher_meta_trains_and_evaluates(tmp_path):
  config = config_lib.validate(CONFIG.get_config("tiny,teacher=exp3s"))
  config.eval.num_plot_tasks = 0
  state = train.train(config, str(tmp_path))
  assert int(state.step) == config.num_steps
  results = evaluators.evaluate_and_report(config, str(tmp_path))
  _check_meta_learned(results)
