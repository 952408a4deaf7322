"""The short-horizon-bias reproduction script at its smallest size, end to end."""

import json
import os
import subprocess
import time

from tests.conftest import ROOT, check_tiny_time


def test_short_horizon_bias_tiny(tmp_path):
  env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  t0 = time.perf_counter()
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "short_horizon_bias.sh"),
                           "tiny"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  check_tiny_time("reproductions/short_horizon_bias.py", "tiny", time.perf_counter() - t0)
  out = tmp_path / "results" / "short_horizon_bias_tiny"
  table = out.with_suffix(".md").read_text()
  for row in ("| greedy (horizon 1) | closed form on exact moments (Thm. 2) |",
              "| greedy (horizon 1) | truncated_backprop, truncation 1 |",
              "| final loss (horizon T) | exact moments, Adam |",
              "| final loss (horizon T) | full_backprop |",
              "| progress (horizon T) | exact moments, Adam |",
              "| progress (horizon T) | full_backprop |",
              "| PES target | exact moments, Adam |", "| PES, truncation 10 |"):
    assert row in table, row
  assert "## Bars (issue 6)" in table and "lr_0 / lr_100 >= 10 |" in table
  assert "Hardware:" in table and "Wall time:" in table
  assert len(out.with_suffix(".csv").read_text().splitlines()) >= 9  # + extra progress rows
  report = json.loads(out.with_suffix(".json").read_text())
  assert len(report["bars"]) == 4 and report["settings"]["steps"] == 120
  # The exact final-loss row is the reference: its ratio to the optimum is 1 by definition.
  final = next(r for r in report["rows"] if r["method"].startswith("final loss")
               and r["estimator"].startswith("exact"))
  assert final["ratio_to_optimum"] == 1.0
  greedy = report["schedules"]["greedy (horizon 1) | closed form on exact moments (Thm. 2)"]
  assert len(greedy) == 120 and greedy[0] > greedy[-1]
  assert out.with_suffix(".png").stat().st_size > 10_000
