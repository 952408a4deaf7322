r"""Table and plots of ``curriculum_icl`` (:mod:`metalearn.reproductions.curriculum`).

  python experiments/curriculum_report.py --workdirs=/tmp/none_s0,/tmp/garg_s0,/tmp/alp_gmm_s0 \
    --out=results/curriculum_icl_small --command="launch/reproduce/curriculum_icl.sh small"
"""

import pathlib

from absl import app
from absl import flags

from metalearn.reproductions import curriculum

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of the runs.")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, OUT.csv, OUT.png).")
_COMMAND = flags.DEFINE_string("command", "", "The command that produced the runs (for OUT.md).")
_METRIC = flags.DEFINE_enum("metric", "monitor_mean", ["monitor_mean", "monitor_final"],
                            "Monitored error: mean over prompt positions, or the last one.")
flags.mark_flags_as_required(["workdirs", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runs = [curriculum.load_run(pathlib.Path(w), _METRIC.value) for w in _WORKDIRS.value]
  curriculum.write(runs, pathlib.Path(_OUT.value), _COMMAND.value, _METRIC.value)
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
