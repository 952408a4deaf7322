r"""Tables, plots and bars of the in-context-learning reproductions from their workdirs
(:mod:`metalearn.reproductions.icl`).

  python experiments/icl_report.py --experiment=gd --workdirs=/tmp/gd1,/tmp/gd2,/tmp/gd3 \
    --out=results/icl_gd_small --command="launch/reproduce/icl_gd.sh small"
"""

from absl import app
from absl import flags

from metalearn.reproductions import icl

_EXPERIMENT = flags.DEFINE_enum("experiment", None, list(icl.EXPERIMENTS), "Which report.")
_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of the runs (evaluated).")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, OUT.csv, OUT.png).")
_COMMAND = flags.DEFINE_string("command", "", "The command that produced the runs (for OUT.md).")
flags.mark_flags_as_required(["experiment", "workdirs", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  print(icl.write(_EXPERIMENT.value, _WORKDIRS.value, _OUT.value, _COMMAND.value))


if __name__ == "__main__":
  app.run(main)
