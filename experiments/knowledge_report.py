r"""Tables and curves of ``lm_knowledge_storage`` (:mod:`metalearn.reproductions.knowledge`).

  python experiments/knowledge_report.py --workdirs=/tmp/mix_plain_s0,/tmp/mix_augmented_s0 \
    --out=results/lm_knowledge_storage_small \
    --command="launch/reproduce/lm_knowledge_storage.sh small"
"""

import pathlib

from absl import app
from absl import flags

from metalearn.reproductions import knowledge

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of the finished runs (for the "
                              "fine-tuning protocol, the fine-tuning stage's).")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, OUT.csv, OUT.png).")
_COMMAND = flags.DEFINE_string("command", "", "The command that produced the runs (for OUT.md).")
flags.mark_flags_as_required(["workdirs", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runs = [knowledge.load_run(pathlib.Path(w)) for w in _WORKDIRS.value]
  knowledge.write(runs, pathlib.Path(_OUT.value), _COMMAND.value)
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
