"""Every colab is committed with the outputs of a real run at its full size
(``python colabs/execute.py``): every code cell ran, in order, without an error, and the
printed numbers are the full-size run's."""

import nbformat
import pytest

from tests.conftest import ROOT

# a line each notebook prints at its full size only (METALEARN_COLAB_SMALL=1 prints another)
FULL_SIZE = {"quickstart.ipynb": "outer steps done: 20000",
             "learned_optimizers.ipynb": "PES steps done: 1500",
             "in_context_learning.ipynb": "\n10 "}
NOTEBOOKS = sorted(p.name for p in (ROOT / "colabs").glob("*.ipynb"))


def test_every_notebook_states_its_full_size_line():
  assert sorted(FULL_SIZE) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notebook_carries_the_outputs_of_a_full_run(name):
  nb = nbformat.read(ROOT / "colabs" / name, as_version=4)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
      f"{name}: not run top to bottom in one kernel: python colabs/execute.py {name}")
  outputs = [o for c in code for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"], name
  assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} shows no plot"
  text = "".join(o.get("text", "") for o in outputs)
  assert FULL_SIZE[name] in text, f"{name}: not the full-size run's outputs"
  assert nb.metadata["metalearn_run"]["wall_seconds"] > 0
