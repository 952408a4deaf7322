"""The reproduction script at its smallest size, end to end."""

import os
import subprocess

from tests.conftest import ROOT


def test_maml_sinusoid_small(tmp_path):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "2", "PIN": "1", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "maml_sinusoid.sh"),
                           "small"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  table = (tmp_path / "results" / "maml_sinusoid_small.md").read_text()
  for learner in ("maml", "fomaml", "metasgd", "anil", "reptile"):
    assert f"| {learner} | 10 | 1 |" in table
  assert len((tmp_path / "results" / "maml_sinusoid_small.csv").read_text().splitlines()) == 6


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
