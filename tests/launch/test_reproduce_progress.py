"""The learning-progress reproductions that train through meta_train.py, at their tiny size:
curriculum_icl (teachers in place of Garg's curriculum) and progress_vs_success (textbooks)."""

import csv
import os
import subprocess

import pytest

from tests.conftest import ROOT, check_tiny_run_time


def _run(script, tmp_path):
  # One run at a time: later runs load the programs they share with earlier ones from the
  # session's compilation cache (runs in parallel are tested by test_reproduce.py).
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "1", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / f"{script}.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / f"{script}_tiny"
  assert out.with_suffix(".png").exists()
  with open(out.with_suffix(".csv")) as f:
    return out.with_suffix(".md").read_text(), list(csv.DictReader(f))


@pytest.mark.parametrize("script, conditions", [
    ("curriculum_icl", {"none", "garg", "alp_gmm"}),
    ("progress_vs_success", {"sequential / progress / books, tscl teacher",
                             "sequential / progress / whole books, no teacher",
                             "sequential / mean / whole books, no teacher",
                             "maml / final / single chapters, uniform"}),
])
def test_reproduction_tiny(tmp_path, script, conditions):
  table, rows = _run(script, tmp_path)
  key = "method" if script == "curriculum_icl" else "condition"
  assert {r[key] for r in rows} == conditions
  for r in rows:
    assert f"| {r[key]} | 1 |" in table
  if script == "curriculum_icl":  # the target is the no-curriculum run's own final error
    none = next(r for r in rows if r["method"] == "none")
    assert none["reached"] == "1/1" and float(none["target"]) == float(none["final_error"])
    check_tiny_run_time(tmp_path / "runs" / "alp_gmm_s0_tiny", "in_context.py", "curriculum,tiny")
  else:
    assert "Winner per metric" in table and "(success on single tasks)" in table
