"""Executes the quickstart notebook headlessly at its smallest size."""

import nbclient
import nbformat

from tests.conftest import ROOT


def test_quickstart_notebook_runs(monkeypatch):
  monkeypatch.setenv("METALEARN_COLAB_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  nb = nbformat.read(ROOT / "colabs" / "quickstart.ipynb", as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}}).execute()
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))
  assert "outer steps done: 200" in outputs
  assert "| meta |" in outputs
  images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(images) == 2
