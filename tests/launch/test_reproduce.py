"""The reproduction script at its smallest size, end to end."""

import json
import os
import subprocess

from tests.conftest import ROOT, check_tiny_run_time
from tests.test_exported import check_protonet_export


# The runs of a reproduction share programs (the evaluation and its baselines, the first-step
# operations): the session's JAX compilation cache (tests/conftest.py), which they inherit
# through the environment, compiles them once instead of once per run.


def test_maml_sinusoid_tiny(tmp_path):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "2", "PIN": "1",
         "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "maml_sinusoid.sh"),
                           "tiny"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  table = (tmp_path / "results" / "maml_sinusoid_tiny.md").read_text()
  for learner in ("maml", "fomaml", "metasgd", "anil", "reptile"):
    assert f"| {learner} | 10 | 1 |" in table
  assert len((tmp_path / "results" / "maml_sinusoid_tiny.csv").read_text().splitlines()) == 6
  for learner in ("maml", "reptile"):  # each pinned to its own core, as the docstring measured
    check_tiny_run_time(tmp_path / "runs" / f"{learner}_k10_seed0", "maml_sinusoid.py",
                        f"{learner},tiny")


def test_omniglot_tiny(tmp_path, omniglot_dir):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "2", "PIN": "1",
         "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "omniglot.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  table = (tmp_path / "results" / "omniglot_tiny.md").read_text()
  assert "omniglot (mini protocol, test classes)" in table
  for learner in ("maml", "protonet"):
    assert f"| {learner} | 5 | 1 | 1 |" in table
    assert (tmp_path / "runs" / f"{learner}_5w1s" / "wall_seconds.txt").exists()
  assert "| maml | 5 | 1 | 1 | " in table and "≥ 88.0 (" in table  # Omniglot-mini bars
  assert len((tmp_path / "results" / "omniglot_tiny.csv").read_text().splitlines()) == 3
  for learner in ("maml", "protonet"):
    check_tiny_run_time(tmp_path / "runs" / f"{learner}_5w1s", "omniglot.py", f"{learner},tiny")
  # the ProtoNet's export/ classifies outside the repository as the learner does
  check_protonet_export(tmp_path / "runs" / "protonet_5w1s", tmp_path)


def test_pes_influence_balancing_tiny(tmp_path):
  env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" /
                                       "pes_influence_balancing.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / "pes_influence_balancing_tiny"
  table = out.with_suffix(".md").read_text()
  for method in ("| PES | 1 |", "| PES | 10 |", "| truncated ES | 1 |",
                 "| truncated backprop | 1 |", "| truncated backprop | 100 |"):
    assert method in table
  assert out.with_suffix(".png").exists() and len(out.with_suffix(".csv").read_text().splitlines()) == 6


def test_learned_optimizer_tiny(tmp_path):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "learned_optimizer.sh"),
                           "tiny"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  table = (tmp_path / "results" / "learned_optimizer_tiny.md").read_text()
  assert "# Learned optimizer (mlp_lopt: hidden (32, 32), full features)" in table
  assert "## Bars (small)" in table and "beats Adam lr=0.001" in table
  assert "objective 'late_mean'" in table  # the default: PES scores segments by their place
  assert "### long_horizon" in table and "| adam lr=0.01 |" in table
  assert "## Time to quality" in table and "| 4 |" in table
  assert (tmp_path / "results" / "learned_optimizer_tiny.png").exists()
  # the summary keeps every reported number; the per-step curves stay in the run's eval.json
  summary = (tmp_path / "results" / "learned_optimizer_tiny.json").read_text()
  assert json.loads(summary)["bars"] and "mean_curve" not in summary
  assert "mean_curve" in (tmp_path / "runs" / "mlp_lopt_tiny" / "eval.json").read_text()
  # the config's mesh.cpu_devices = 2: meta-training split its runs over two CPU devices
  assert "(2 device(s), 1 process(es))" in (tmp_path / "runs" / "mlp_lopt_tiny" /
                                            "log.txt").read_text()
  check_tiny_run_time(tmp_path / "runs" / "mlp_lopt_tiny", "learned_optimizer.py",
                      "mlp_lopt,tiny")
