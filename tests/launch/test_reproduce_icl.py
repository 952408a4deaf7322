"""The in-context-learning reproduction scripts at their smallest size, end to end."""

import json
import os
import re
import subprocess

import pytest

from tests.conftest import ROOT, check_tiny_run_time

# script -> its run of the config's plain tiny size (the run directory, the config argument)
PLAIN_TINY = {"icl_linear_regression": ("class_linear_tiny", "linear_regression,tiny"),
              "icl_gd": ("layers_1_tiny", "gd,tiny"),
              "icl_task_diversity": ("pool_64_tiny", "task_diversity,tiny"),
              "gpicl": ("tasks_256_tiny", "gpicl,tiny")}
SCRIPTS = {  # script -> what its table must show
    "icl_linear_regression": ["| k | model | least_squares | averaging | knn_3 | gd_1 |",
                              "below knn_3 for every k >= 2"],
    "icl_gd": ["| 1 | ", "| 2 | ", "cosine of implied update", "von Oswald et al. reference"],
    "icl_task_diversity": ["| 2 | ", "| 64 | ", "transition:"],
    "gpicl": ["| 2 | ", "| 256 | ", "memorisation -> generalisation"],
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_icl_reproduction_tiny(tmp_path, script):
  # One run at a time: the second loads the programs the two share (task sampling, the
  # baselines) from the session's compilation cache instead of compiling them beside the first
  # (14% less CPU). Runs in parallel are tested by test_reproduce.py.
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "1", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / f"{script}.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / f"{script}_tiny"
  table = out.with_suffix(".md").read_text()
  for expected in SCRIPTS[script]:
    assert expected in table, (expected, table)
  assert out.with_suffix(".png").exists()
  report = json.loads(out.with_suffix(".json").read_text())
  assert report["rows"] and report["bars"]
  assert all(re.search(r"\((met|NOT met)\b", b) for b in report["bars"]), report["bars"]
  # every run evaluated its checkpoint and drew its curves
  for run in (tmp_path / "runs").iterdir():
    assert (run / "eval.json").exists() and list(run.glob("*_vs_examples_*.png")), run
  run, arg = PLAIN_TINY[script]
  check_tiny_run_time(tmp_path / "runs" / run, "in_context.py", arg)
