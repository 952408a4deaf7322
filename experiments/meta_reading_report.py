r"""Tables and curves of ``lm_meta_reading`` (:mod:`metalearn.reproductions.meta_reading`).

  python experiments/meta_reading_report.py --workdirs=/tmp/reading/adam_s0,/tmp/reading/tw_s0 \
    --out=results/lm_meta_reading_small --command="launch/reproduce/lm_meta_reading.sh small"
"""

import pathlib

from absl import app
from absl import flags

from metalearn.reproductions import meta_reading

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of the finished runs: tuned baselines "
                              "(experiments/reading_baseline.py) and meta-trained readers.")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, OUT.csv, OUT.png).")
_COMMAND = flags.DEFINE_string("command", "", "The command that produced the runs (for OUT.md).")
flags.mark_flags_as_required(["workdirs", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runs = [meta_reading.load_run(pathlib.Path(w)) for w in _WORKDIRS.value]
  meta_reading.write(runs, pathlib.Path(_OUT.value), _COMMAND.value)
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
