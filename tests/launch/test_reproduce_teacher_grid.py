"""launch/reproduce/teacher_grid.sh at its smallest size, end to end."""

import json
import os
import subprocess

from tests.conftest import ROOT


def test_teacher_grid_tiny(tmp_path):
  env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "teacher_grid.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / "teacher_grid_tiny"
  table = out.with_suffix(".md").read_text()
  for row in ("| uniform (discrete) | discrete 100 |", "| uniform (box) | box 2 |",
              "| fixed order (by diagonals) | discrete 100 |", "| TSCL | discrete 100 |",
              "| Exp3.S | discrete 100 |", "| ALP-GMM | box 2 |"):
    assert row in table
  assert "| ≤ 10 |" in table and "| ≥ 90 |" in table and "≥ 5 × uniform (box)" in table
  # The textbook masters 76 practices per cell in order: 600 episodes -> 7 cells, every seed.
  assert "| fixed order (by diagonals) | discrete 100 | 7.0 ± 0.0 | 7–7 |" in table
  assert len(out.with_suffix(".csv").read_text().splitlines()) == 7
  assert out.with_suffix(".png").exists()
  curves = json.loads(out.with_suffix(".json").read_text())["curves"]
  assert curves["episodes"] == [100, 200, 300, 400, 500, 600]
  assert len(curves["ALP-GMM"]) == 2 and len(curves["ALP-GMM"][0]) == 6
