"""Meta-trainer: determinism, resume after SIGKILL, corrupt checkpoints, non-finite steps."""

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment, train
from metalearn.checkpoint import Checkpointer
from tests.conftest import ROOT


def _rows(workdir):
  rows = [json.loads(l) for l in (pathlib.Path(workdir) / "metrics.jsonl").read_text().split("\n")
          if l]
  for r in rows:
    r.pop("steps_per_sec")
  return rows


def _final_theta(config, workdir):
  exp = experiment.build(config)
  ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints", 3)
  state, step = ckpt.restore_latest(train.init_state(exp, config.seed))
  ckpt.close()
  return state.theta, step


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_same_seed_same_numbers_and_workdir_contents(tiny_config, tmp_path):
  s1 = train.train(tiny_config, tmp_path / "a")
  s2 = train.train(tiny_config, tmp_path / "b")
  _assert_trees_equal(s1.theta, s2.theta)
  assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
  rows = _rows(tmp_path / "a")
  assert [r["step"] for r in rows] == [10, 20, 30, 40]
  assert {"meta_loss", "grad_norm", "loss_step_0", "loss_step_1", "nonfinite_total"} <= set(
      rows[0])
  files = {p.name for p in (tmp_path / "a").iterdir()}
  assert {"config.json", "metrics.jsonl", "checkpoints", "tensorboard"} <= files
  assert any((tmp_path / "a" / "tensorboard").glob("events.out.tfevents.*"))
  assert sorted(int(p.name) for p in (tmp_path / "a" / "checkpoints").iterdir()
                if p.name.isdigit()) == [20, 40]
  tiny_config.seed = 1
  s3 = train.train(tiny_config, tmp_path / "c")
  assert not np.allclose(jax.tree.leaves(s1.theta)[0], jax.tree.leaves(s3.theta)[0])


def test_truncated_latest_checkpoint_falls_back_and_run_recovers(tiny_config, tmp_path, caplog):
  final = train.train(tiny_config, tmp_path)
  biggest = max((p for p in (tmp_path / "checkpoints" / "40").rglob("*") if p.is_file()),
                key=lambda p: p.stat().st_size)
  biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])
  tiny_config.num_steps = 40
  resumed = train.train(tiny_config, tmp_path)
  assert "Checkpoint at step 40 is not usable" in caplog.text
  assert (tmp_path / "checkpoints_corrupt" / "40-0").is_dir()
  _assert_trees_equal(final.theta, resumed.theta)  # recomputed from step 20, identically
  assert [r["step"] for r in _rows(tmp_path)] == [10, 20, 30, 40]


def test_partial_metrics_line_from_a_kill_is_dropped_on_resume(tiny_config, tmp_path):
  tiny_config.num_steps = 20
  train.train(tiny_config, tmp_path)
  with (tmp_path / "metrics.jsonl").open("a") as f:
    f.write('{"step": 30, "meta_lo')
  tiny_config.num_steps = 40
  train.train(tiny_config, tmp_path)
  assert [r["step"] for r in _rows(tmp_path)] == [10, 20, 30, 40]


def test_read_only_checkpointer_skips_a_bad_step_without_moving_it(tiny_config, tmp_path):
  train.train(tiny_config, tmp_path)
  (tmp_path / "checkpoints" / "manifests" / "40.json").unlink()
  exp = experiment.build(tiny_config)
  reader = Checkpointer(tmp_path / "checkpoints", 3, read_only=True)
  _, step = reader.restore_latest(train.init_state(exp, tiny_config.seed))
  reader.close()
  assert step == 20 and (tmp_path / "checkpoints" / "40").is_dir()
  assert not (tmp_path / "checkpoints_corrupt").exists()


def test_empty_arrays_round_trip_through_a_checkpoint(tmp_path, caplog):
  # orbax refuses to save zero-size arrays (an episode's empty draw in a PES state): the
  # checkpointer leaves them out and restores them from the template
  tree = {"a": np.arange(3.0), "draw": {"empty": np.zeros((0, 4), np.int32), "k": np.ones(2)}}
  writer = Checkpointer(tmp_path, 2)
  writer.save(5, tree)
  writer.close()
  with caplog.at_level(logging.WARNING):  # a read-only reader is opened without a warning
    reader = Checkpointer(tmp_path, 2, read_only=True)
  assert not caplog.records, [r.getMessage() for r in caplog.records]
  template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
  for restored in (reader.restore(5, template), reader.restore_latest(template)[0]):
    assert jax.tree.structure(restored) == jax.tree.structure(tree)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(tree)):
      np.testing.assert_array_equal(got, want)
      assert got.shape == want.shape and got.dtype == want.dtype
  reader.close()


def test_resuming_with_a_different_config_is_refused(tiny_config, tmp_path):
  tiny_config.num_steps = 20
  train.train(tiny_config, tmp_path)
  tiny_config.num_steps = 40  # extending a run is allowed ...
  train.train(tiny_config, tmp_path)
  tiny_config.learner.inner_lr = 0.02  # ... changing the experiment is not
  with pytest.raises(config_lib.ConfigError, match="learner.inner_lr: 0.01 in the workdir"):
    train.train(tiny_config, tmp_path)


def test_non_finite_steps_are_skipped_counted_and_stop_the_run(tiny_config, tmp_path):
  tiny_config.learner.inner_lr = 1e6
  exp = experiment.build(config_lib.validate(tiny_config))
  state = train.init_state(exp, 0)
  new_state, metrics = jax.jit(train.make_outer_step(exp, 0))(state, exp.family)
  assert not bool(metrics["finite"])
  _assert_trees_equal(new_state.theta, state.theta)
  assert int(new_state.nonfinite_total) == 1 and int(new_state.step) == 1
  tiny_config.max_consecutive_nonfinite = 15
  with pytest.raises(FloatingPointError, match="non-finite .* for 20 consecutive outer steps.*"
                                               "Lower optimizer.learning_rate"):
    train.train(tiny_config, tmp_path)


def _meta_train_cmd(workdir):
  return [sys.executable, str(ROOT / "experiments" / "meta_train.py"),
          f"--config={ROOT / 'experiments' / 'configs' / 'maml_sinusoid.py'}:maml,small",
          f"--workdir={workdir}", "--config.num_steps=2000", "--config.steps_per_call=250",
          "--config.checkpoint_every=500", "--config.log_every=500",
          "--config.eval.at_end=False"]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
  # The three runs compile the same programs: the session's compilation cache
  # (tests/conftest.py), inherited through the environment, compiles them once. Their ~4,500
  # outer steps make this test bound by run time, not compilation: fully optimised code.
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "0"}
  subprocess.run(_meta_train_cmd(tmp_path / "straight"), check=True, env=env,
                 capture_output=True)
  killed = tmp_path / "killed"
  proc = subprocess.Popen(_meta_train_cmd(killed), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  manifest = killed / "checkpoints" / "manifests" / "500.json"
  deadline = time.time() + 120
  while not manifest.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert manifest.exists(), "the run ended before it could be killed mid-training"
  assert not (killed / "checkpoints" / "manifests" / "2000.json").exists()
  result = subprocess.run(_meta_train_cmd(killed), env=env, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resuming meta-training" in result.stderr
  assert _rows(killed) == _rows(tmp_path / "straight")
  config = config_lib.default_config()
  config.update_from_flattened_dict({"task.num_support": 10})
  a, step_a = _final_theta(config, tmp_path / "straight")
  b, step_b = _final_theta(config, killed)
  assert step_a == step_b == 2000
  _assert_trees_equal(a, b)
