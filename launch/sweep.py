r"""Runs a grid of configs x seeds locally, each into its own workdir, then tables the results.

  python launch/sweep.py --config=experiments/configs/maml_sinusoid.py:maml,small \
    --grid=learner.inner_lr=0.003,0.01,0.03 --grid=meta_batch_size=10,25 --seeds=0,1,2 \
    --root=/tmp/sweeps/inner_lr --parallel=2 --pin
  python launch/sweep.py --root=/tmp/sweeps/inner_lr --collect_only   # table only

Each grid point and seed runs ``experiments/meta_train.py`` (which evaluates at the end) in
``ROOT/<key=value,...,seed=S>/`` with its log in ``log.txt``; re-running resumes or skips
finished runs. The collector writes ``ROOT/sweep.md`` and ``ROOT/sweep.csv``: per grid point,
the primary metric after the last reported inner step, mean over seeds with the mean of the
per-seed 95% CIs, and the spread across seeds. Failed runs are listed and make the exit status
non-zero.
"""

import concurrent.futures
import itertools
import json
import os
import pathlib
import subprocess
import sys

from absl import app
from absl import flags
from absl import logging

from metalearn import reporting

_CONFIG = flags.DEFINE_string("config", None, "Config file[:arg] for every run.")
_GRID = flags.DEFINE_multi_string("grid", [], "key=v1,v2,... (repeat the flag for more keys).")
_SET = flags.DEFINE_multi_string("set", [], "key=value applied to every run.")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds for every grid point.")
_ROOT = flags.DEFINE_string("root", None, "Directory of the sweep's run workdirs and tables.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Runs at a time.")
_PIN = flags.DEFINE_bool("pin", False, "Pin each concurrent run to its own CPU core.")
_COLLECT_ONLY = flags.DEFINE_bool("collect_only", False, "Only write the table.")
flags.mark_flag_as_required("root")

_ROOT_DIR = pathlib.Path(__file__).resolve().parents[1]


def grid_points(grid: list[str]) -> list[dict[str, str]]:
  """``["a=1,2", "b=x"]`` -> ``[{"a": "1", "b": "x"}, {"a": "2", "b": "x"}]``."""
  axes = []
  for spec in grid:
    key, sep, values = spec.partition("=")
    if not sep or not key or not values:
      raise app.UsageError(f"--grid={spec!r}: use key=v1,v2,...")
    axes.append([(key, v) for v in values.split(",")])
  return [dict(p) for p in itertools.product(*axes)]


def _run_one(slot_runs, run):
  point, seed, workdir = run
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "sweep_point.json").write_text(json.dumps({"point": point, "seed": int(seed)}))
  if (workdir / "eval.json").exists():
    return run, 0
  cmd = [sys.executable, str(_ROOT_DIR / "experiments" / "meta_train.py"),
         f"--config={_CONFIG.value}", f"--workdir={workdir}", f"--config.seed={seed}"]
  cmd += [f"--config.{kv}" for kv in _SET.value]
  cmd += [f"--config.{k}={v}" for k, v in point.items()]
  if _PIN.value:
    slot = slot_runs.pop()
    cmd = ["taskset", "-c", str(slot % os.cpu_count())] + cmd
  with open(workdir / "log.txt", "w") as log:
    code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=_ROOT_DIR).returncode
  if _PIN.value:
    slot_runs.append(slot)
  return run, code


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  root = pathlib.Path(_ROOT.value)
  failed = []
  if not _COLLECT_ONLY.value:
    if not _CONFIG.value:
      raise app.UsageError("--config is required unless --collect_only")
    runs = [(p, s, root / ",".join([f"{k}={v}" for k, v in p.items()] + [f"seed={s}"]))
            for p in grid_points(_GRID.value) for s in _SEEDS.value]
    print(f"sweep: {len(runs)} runs into {root}, {_PARALLEL.value} at a time")
    slots = list(range(_PARALLEL.value))
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL.value) as pool:
      for run, code in pool.map(lambda r: _run_one(slots, r), runs):
        status = "done" if code == 0 else f"FAILED (exit {code}, see {run[2] / 'log.txt'})"
        print(f"{run[2].name}: {status}", flush=True)
        if code:
          failed.append(run[2].name)
  rows = reporting.collect_sweep(root)
  if not rows:
    raise app.UsageError(f"no finished runs (eval.json) under {root}")
  md, csv = reporting.write_sweep(rows, root / "sweep", missing=failed)
  print(md.read_text())
  print(f"wrote {md} and {csv}")
  if failed:
    logging.error("%d run(s) failed: %s", len(failed), ", ".join(failed))
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
