r"""Evaluates the newest checkpoint in ``--workdir``: eval.json, plots and a printed table.

  python experiments/evaluate.py \
    --config=experiments/configs/maml_sinusoid.py:maml --workdir=/tmp/maml_sinusoid
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import evaluation
from metalearn import logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a meta-training run.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  evaluation.evaluate_and_report(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
