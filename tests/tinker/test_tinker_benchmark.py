"""The benchmark's tinker suite at ``tiny``: forward_backward, optim_step and sampling rows."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_tinker_suite_prints_its_row(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
      [sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--suites=tinker",
       "--lm_sizes=tiny", "--tinker=4:32:4:2:8", "--repeats=1",
       f"--json={tmp_path / 'bench.json'}"], capture_output=True, text=True, env=env, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| tiny llama | 0.04M | 4 |" in result.stdout
  row, = json.loads((tmp_path / "bench.json").read_text())["tinker"]
  assert row["forward_backward_tokens_per_s"] > 0 and row["sampled_tokens_per_s"] > 0
  assert 0 < row["share_of_peak"] < 1 and row["optim_step_ms"] > 0
