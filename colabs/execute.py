r"""Runs the notebooks of ``colabs/`` at their full size and stores their outputs in place, so
each is committed with the outputs of a real run.

  python colabs/execute.py                      # every notebook
  python colabs/execute.py quickstart.ipynb     # some

Each runs in a fresh kernel from the repository root with ``metalearn`` as installed here
(its install cell is then a no-op); an error in a cell stops that notebook and leaves the file
unchanged. The machine, JAX and the wall time are stored in the notebook's metadata
(``metalearn_run``).
"""

import argparse
import os
import pathlib
import sys
import time

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLABS = ROOT / "colabs"


def execute(path: pathlib.Path, timeout: int) -> float:
  """Executes ``path`` in place at full size; returns its wall time in seconds."""
  from metalearn import evaluators  # pylint: disable=g-import-not-at-top
  os.environ.pop("METALEARN_COLAB_SMALL", None)  # the kernel inherits this environment
  nb = nbformat.read(path, as_version=4)
  t0 = time.perf_counter()
  nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}}).execute()
  seconds = time.perf_counter() - t0
  nb.metadata["metalearn_run"] = {"hardware": evaluators.hardware(),
                                  "wall_seconds": round(seconds, 1)}
  nbformat.write(nb, path)
  return seconds


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("names", nargs="*", help="notebooks of colabs/ (default: all)")
  parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
  args = parser.parse_args(argv)
  names = args.names or sorted(p.name for p in COLABS.glob("*.ipynb"))
  missing = [n for n in names if not (COLABS / n).exists()]
  if missing:
    parser.error(f"not in {COLABS}: {', '.join(missing)}")
  for name in names:
    print(f"{name}: ran in {execute(COLABS / name, args.timeout):.0f} s", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
