r"""Table and plot of ``progress_vs_success`` (:mod:`metalearn.reproductions.progress`).

  python experiments/progress_report.py --workdirs=/tmp/p_s0,/tmp/p_s1,/tmp/s_s0,/tmp/s_s1 \
    --out=results/progress_vs_success_small --command="launch/reproduce/progress_vs_success.sh small"
"""

import pathlib

from absl import app
from absl import flags

from metalearn.reproductions import progress

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of the evaluated runs.")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, OUT.csv, OUT.png).")
_COMMAND = flags.DEFINE_string("command", "", "The command that produced the runs (for OUT.md).")
flags.mark_flags_as_required(["workdirs", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runs = [progress.load_run(pathlib.Path(w)) for w in _WORKDIRS.value]
  progress.write(runs, pathlib.Path(_OUT.value), _COMMAND.value)
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
