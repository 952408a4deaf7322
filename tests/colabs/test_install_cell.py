"""Every colab installs metalearn from where the user says (SOURCE, $METALEARN_SOURCE) or from
the checkout it runs in, and otherwise stops naming the fix; no made-up URL."""

import importlib.util
import subprocess

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / "colabs").glob("*.ipynb"))


def _install_cell(name: str) -> str:
  cell = nbformat.read(ROOT / "colabs" / name, as_version=4).cells[1]
  assert cell.cell_type == "code" and "Install metalearn" in cell.source
  return cell.source


def _run(source: str, monkeypatch, cwd, env_source=None) -> list:
  """Runs the cell as if metalearn were not installed; returns the pip commands it ran."""
  calls = []
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
  if env_source is None:
    monkeypatch.delenv("METALEARN_SOURCE", raising=False)
  else:
    monkeypatch.setenv("METALEARN_SOURCE", env_source)
  monkeypatch.chdir(cwd)
  exec(compile(source, "<install cell>", "exec"), {})  # pylint: disable=exec-used
  return calls


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_install_cell_installs_from_the_checkout_or_where_told(name, monkeypatch,
                                                                   tmp_path):
  source = _install_cell(name)
  assert "github.com/metalearn" not in source
  calls = _run(source, monkeypatch, ROOT / "colabs")
  assert calls and calls[0][-1] == str(ROOT)  # the checkout the notebook runs in
  calls = _run(source, monkeypatch, tmp_path, env_source="git+https://example.org/me/ml")
  assert calls[0][-1] == "git+https://example.org/me/ml"
  calls = _run(source.replace('SOURCE = ""', f'SOURCE = "{tmp_path}"'), monkeypatch, tmp_path)
  assert calls[0][-1] == str(tmp_path)
  with pytest.raises(RuntimeError, match="set SOURCE to your clone's path"):
    _run(source, monkeypatch, tmp_path)
