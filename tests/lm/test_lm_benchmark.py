"""The benchmark's lm suite at ``tiny``: training throughput against the matmul peak, and the
step's memory falling with rematerialisation."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_lm_suite_prints_its_rows(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
      [sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--suites=lm",
       "--lm_sizes=tiny", "--lm_steps=2", "--repeats=1", "--lm_lengths=32,256",
       f"--json={tmp_path / 'bench.json'}"], capture_output=True, text=True, env=env, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| tiny llama | 0.04M | 8 x 32 |" in result.stdout
  assert "| remat=full |" in result.stdout
  saved = json.loads((tmp_path / "bench.json").read_text())
  row, = saved["lm"]
  assert row["tokens_per_s"] > 0 and 0 < row["share_of_peak"] < 1
  assert row["gflops"] * row["step_ms"] / 1e3 == pytest.approx(row["analytic_gflop_per_step"])
  memory = {(r["remat"], r["seq_len"]): r["temp_mib"] for r in saved["lm_memory"]}
  assert memory["full", 256] < memory["dots", 256] < memory["none", 256]
  assert memory["none", 256] > memory["none", 32]
