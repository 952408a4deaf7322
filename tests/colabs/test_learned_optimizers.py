"""Executes the learned-optimizers notebook headlessly at its smallest size."""

import nbclient
import nbformat

from tests.conftest import ROOT


def test_learned_optimizers_notebook_runs(monkeypatch):
  monkeypatch.setenv("METALEARN_COLAB_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  nb = nbformat.read(ROOT / "colabs" / "learned_optimizers.ipynb", as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}}).execute()
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))
  assert "meta-loss, first 10% vs last 10%" in outputs
  assert "learned (exported to optax)" in outputs and "adam 0.01" in outputs
  images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(images) == 1
