"""Executes the learned-optimizers notebook headlessly at its smallest size."""

from tests.colabs.notebooks import execute


def test_learned_optimizers_notebook_runs(monkeypatch):
  text, images = execute("learned_optimizers.ipynb", monkeypatch)
  assert "meta-loss, first 10% vs last 10%" in text
  assert "learned (exported to optax)" in text and "adam 0.01" in text
  assert images == 1
