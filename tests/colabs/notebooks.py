"""Runs a notebook of colabs/ headlessly at its smallest size (METALEARN_COLAB_SMALL=1)."""

import nbclient
import nbformat

from tests.conftest import ROOT


def execute(name: str, monkeypatch) -> tuple[str, int]:
  """Executes ``colabs/<name>``; returns its printed text and how many images it showed."""
  monkeypatch.setenv("METALEARN_COLAB_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  nb = nbformat.read(ROOT / "colabs" / name, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}}).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  text = "".join(o.get("text", "") for o in outputs)
  return text, sum("image/png" in o.get("data", {}) for o in outputs)
