"""Tiny end-to-end runs of every binary: meta_train, evaluate, report, benchmark."""

import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from tests.conftest import CONFIGS, ROOT, stated_tiny_seconds

CONFIG = ROOT / "experiments" / "configs" / "maml_sinusoid.py"
# As many tuning as evaluation tasks: one compiled task sampler serves both.
TINY = ["--config.num_steps=60", "--config.steps_per_call=20", "--config.log_every=20",
        "--config.checkpoint_every=60", "--config.meta_batch_size=5",
        "--config.eval.num_tasks=40", "--config.eval.pretrain_steps=30",
        "--config.eval.num_tuning_tasks=40", "--config.eval.num_plot_tasks=2"]


def _run(script, *args):
  """Runs ``script`` with the session's JAX compilation cache (tests/conftest.py, inherited
  through the environment): a run that compiles programs an earlier run compiled loads them."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args],
                        capture_output=True, text=True, env=env, cwd=ROOT)


def test_meta_train_then_evaluate(tmp_path):
  # evaluate.py compiles what meta_train.py's evaluation did: the session cache has it
  result = _run("meta_train.py", f"--config={CONFIG}:metasgd,k=5", f"--workdir={tmp_path}", *TINY)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| method | 0 steps | 1 step | 5 steps | 10 steps |" in result.stdout
  assert "| meta |" in result.stdout and "| pretrained |" in result.stdout
  assert f"plot (predictions): {tmp_path / 'predictions.png'}" in result.stdout
  assert "steps/s | ETA" in result.stderr
  # a normal run is quiet: no library warnings (absl's "W" lines), the read-only
  # checkpoint manager's of the evaluation and export included
  assert not re.findall(r"^W\d{4} .*", result.stderr, re.M), result.stderr[-3000:]
  evaluated = json.loads((tmp_path / "eval.json").read_text())
  assert evaluated["checkpoint_step"] == 60 and evaluated["num_support"] == 5
  assert set(evaluated["methods"]) == {"meta", "random_init", "pretrained"}
  assert len(evaluated["methods"]["meta"]["mse"]) == 11
  for png in ("predictions.png", "mse_vs_inner_steps.png"):
    assert (tmp_path / png).stat().st_size > 10_000
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [20, 40, 60]

  again = _run("evaluate.py", f"--config={CONFIG}:metasgd,k=5", f"--workdir={tmp_path}", *TINY)
  assert again.returncode == 0, again.stderr[-3000:]
  assert json.loads((tmp_path / "eval.json").read_text())["methods"] == evaluated["methods"]
  # the workdir's own config.json, no --config: the same evaluation, reported not redone
  (tmp_path / "eval.json").unlink()
  own = _run("evaluate.py", f"--workdir={tmp_path}")
  assert own.returncode == 0, own.stderr[-3000:]
  assert not re.findall(r"^W\d{4} .*", own.stderr, re.M), own.stderr[-3000:]
  assert json.loads((tmp_path / "eval.json").read_text())["methods"] == evaluated["methods"]
  # another learner's config on this workdir: one line naming the difference, no traceback
  wrong = _run("evaluate.py", f"--config={CONFIG}:maml,k=5", f"--workdir={tmp_path}", *TINY)
  assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
  assert "was trained with a different config" in wrong.stderr
  assert "learner.name: 'metasgd' in the workdir, 'maml' now" in wrong.stderr

  report = _run("report.py", f"--workdirs={tmp_path}", f"--published={CONFIG}",
                f"--out={tmp_path / 'table'}")
  assert report.returncode == 0, report.stderr[-3000:]
  assert "| metasgd | 5 | 1 |" in (tmp_path / "table.md").read_text()
  assert "0.90 ± 0.16 [Li17]" in (tmp_path / "table.csv").read_text()


def _parsed_config(*overrides):
  """``CONFIG`` with ``overrides`` applied as meta_train.py's ``--config`` flag applies them (the
  same ml_collections flag, parsed in this process), then validated."""
  argv = ["meta_train.py", f"--config={CONFIG}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=False,
                                  accept_new_attributes=True, sys_argv=argv)
  values(argv)
  return config_lib.validate(values.config)


def test_bad_config_stops_before_compiling_with_a_clear_message(tmp_path):
  # The binary's path once (the message on stderr, nothing written); every other message
  # through the same flag parsing and validation in this process.
  result = _run("meta_train.py", f"--config={CONFIG}", f"--workdir={tmp_path}",
                "--config.learner.name=mamal")
  assert result.returncode != 0 and ("'learner.name' = 'mamal' is not a registered learner. "
                                     "Did you mean 'maml'?") in result.stderr, result.stderr[-2000:]
  assert not (tmp_path / "config.json").exists()
  cases = [("--config.learner.inner_lr=-0.1", "'learner.inner_lr' = -0.1 is not allowed: it "
                                              "must be a number > 0"),
           ("--config.learner.inner_lt=0.1", "unknown config key 'learner.inner_lt' for "
                                             "learner 'maml'. Did you mean 'learner.inner_lr'?"),
           ("--config.learner.nme=maml", "unknown config key 'learner.nme' for learner "
                                         "'maml'. Did you mean 'learner.name'?"),
           ("--config.eval.num_task=5", "unknown config key 'eval.num_task' for evaluator "
                                        "'few_shot'. Did you mean 'eval.num_tasks'?")]
  for flag, message in cases:
    with pytest.raises(config_lib.ConfigError) as error:
      _parsed_config(flag)
    assert message in str(error.value), (flag, str(error.value))
  assert _parsed_config("--config.learner.inner_lr=0.1").learner.inner_lr == 0.1


def test_evaluate_without_checkpoint_says_what_to_do(tmp_path):
  result = _run("evaluate.py", f"--config={CONFIG}", f"--workdir={tmp_path}")
  assert result.returncode != 0 and "meta-train first" in result.stderr


def test_benchmark_prints_a_table_and_compares(tmp_path):
  args = ["--steps_per_call=10", "--repeats=1", "--k=5", "--learners=maml",
          "--memory_steps=10,40", f"--out_dir={tmp_path}"]
  # the second run compiles the first one's memory programs: the session cache has them
  result = _run("benchmark.py", *args, "--suites=sinusoid,handwritten,few_shot,memory",
                f"--json={tmp_path / 'bench.json'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| sinusoid | maml | 5 | 25 | 1 |" in result.stdout
  assert "| maml | 5 | 25 | 1 |" in result.stdout  # engine vs hand-written
  assert "| few_shot | protonet | 1 | 1 | 0 |" in result.stdout
  saved = json.loads((tmp_path / "bench.json").read_text())
  rows = saved["rows"]
  assert rows[0]["outer_steps_per_s"] > 0 and rows[0]["mflop_per_step"] > 1
  assert all(r["memory_mib"] > 0 for r in rows)
  versus = saved["handwritten"][0]
  assert versus["ratio_min"] <= versus["ratio"] <= versus["ratio_max"]
  assert versus["handwritten_mflop_per_step"] > 1 and versus["handwritten_dots"] > 0
  memory = {(r["inner_steps"], r["remat"]): r["temp_mib"] for r in saved["memory"]}
  assert memory[40, True] < memory[40, False]
  assert (tmp_path / "memory_scaling.png").stat().st_size > 10_000
  again = _run("benchmark.py", *args, "--suites=memory", "--memory_steps=40",
               f"--compare={tmp_path / 'bench.json'}")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "| memory/T=40/remat=True | — | — | — | — | — | — | — | 1.00x | — |" in again.stdout


def test_benchmark_omniglot_suite(tmp_path, omniglot_dir):
  result = _run("benchmark.py", "--suites=omniglot", "--omniglot_config=maml,ways=5,shots=1,tiny",
                "--omniglot_steps=2", "--omniglot_meta_batch=2", "--conv_impls=im2col",
                "--repeats=1", f"--json={tmp_path / 'bench.json'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| maml,ways=5,shots=1,tiny | im2col | 2 |" in result.stdout
  row, = json.loads((tmp_path / "bench.json").read_text())["few_shot"]
  assert row["episodes_per_s"] > 0 and 0 < row["sampler_share"] < 1
  assert row["images_per_s"] == pytest.approx(row["episodes_per_s"] * 5 * 2)


def test_benchmark_lopt_suite(tmp_path):
  result = _run("benchmark.py", "--suites=lopt", "--lopt_size=tiny", "--lopts=small_lopt",
                "--lopt_data=images", "--lopt_steps=1", "--repeats=1", "--cpu_devices=2",
                f"--json={tmp_path / 'bench.json'}")
  assert result.returncode == 0, result.stderr[-3000:]
  # timed on one device, then with the runs split over the two CPU devices' mesh
  assert "| lopt | small_lopt (images) |" in result.stdout
  assert "| lopt | small_lopt (images, 2 devices) |" in result.stdout
  saved = json.loads((tmp_path / "bench.json").read_text())
  for row in saved["rows"]:
    assert row["inner_steps_per_s"] == pytest.approx(row["outer_steps_per_s"] * 2 * 2 * 10)
    assert row["gflops"] > 0
  assert len(saved["rows"]) == 2
  cost = {r["optimizer"]: r for r in saved["lopt_cost"]}
  assert cost["adam"]["cost_vs_adam"] == 1.0 and cost["adam"]["state_floats_per_param"] == 2.0
  assert cost["mlp_lopt"]["state_vs_adam"] > cost["small_lopt"]["state_vs_adam"]


def test_benchmark_icl_suite(tmp_path):
  result = _run("benchmark.py", "--suites=icl", "--icl_widths=16:1:2", "--icl_steps=1",
                "--repeats=1", f"--json={tmp_path / 'bench.json'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| transformer w16 L1 H2 | interleaved | 64 | 22 |" in result.stdout
  rows = {r["layout"]: r for r in json.loads((tmp_path / "bench.json").read_text())["icl"]}
  assert rows["packed"]["tokens"] * 2 == rows["interleaved"]["tokens"]
  for r in rows.values():
    assert r["tokens_per_s"] == pytest.approx(r["steps_per_s"] * 64 * r["tokens"])
    assert r["gflops"] > 0


@pytest.mark.parametrize("config_file", sorted(p.name for p in CONFIGS.glob("*.py")))
def test_every_meta_training_config_states_the_wall_time_of_its_tiny_runs(config_file):
  # tests/conftest.py:check_tiny_time holds the end-to-end tests' tiny runs to these
  stated = stated_tiny_seconds(config_file)
  assert stated, f"{config_file}'s docstring states no tiny wall time (``ARG`` N s)"
  module = config_lib.load_config_module(str(CONFIGS / config_file))
  for arg, seconds in stated.items():
    config = config_lib.validate(module.get_config(arg))
    assert config.compile.optimize is False and 0 < seconds < 30, (arg, seconds)


@pytest.mark.parametrize("config_file", sorted(
    f"reproductions/{p.name}" for p in (CONFIGS / "reproductions").glob("*.py")))
def test_every_reproduction_config_states_the_wall_time_of_its_tiny_run(config_file):
  # the reproductions that are not one meta-training run (metalearn/reproductions/)
  stated = stated_tiny_seconds(config_file)
  assert set(stated) == {"tiny"} and 0 < stated["tiny"] < 30, stated
  module = config_lib.load_config_module(str(CONFIGS / config_file))
  assert module.get_config("tiny").compile.optimize is False
