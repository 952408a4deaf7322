"""Executes the quickstart notebook headlessly at its smallest size."""

from tests.colabs.notebooks import execute


def test_quickstart_notebook_runs(monkeypatch):
  text, images = execute("quickstart.ipynb", monkeypatch)
  assert "outer steps done: 200" in text
  assert "| meta |" in text
  assert images == 2
