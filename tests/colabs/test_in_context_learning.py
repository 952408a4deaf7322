"""Executes the in-context-learning notebook headlessly at its smallest size."""

import re

from tests.colabs.notebooks import execute


def test_in_context_learning_notebook_runs(monkeypatch):
  text, images = execute("in_context_learning.ipynb", monkeypatch)
  assert "meta-loss (mean normalised squared error)" in text
  rows = {int(m.group(1)): [float(v) for v in m.group(2).split()]
          for m in re.finditer(r"^(\d+)[ \t]+([\d. \t]+)$", text, re.M)}
  assert sorted(rows) == list(range(7))  # k = 0..6 for the small notebook (d = 3, 7 points)
  assert rows[5][1] < 1e-3  # least squares is exact from k = d on noiseless prompts
  assert images == 1
