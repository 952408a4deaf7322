r"""Writes WORKDIR/export from a meta-training run's newest checkpoint (or ``--step``): the
trained learner, loaded with ``metalearn.load_learner`` or ``metalearn.load_optimizer``
(:mod:`metalearn.exported`; meta_train.py writes it at the end of training too).

  python experiments/export.py --workdir=/tmp/maml_sinusoid [--step=500]
"""

from absl import app
from absl import flags

from metalearn import config as config_lib
from metalearn import exported
from metalearn import logs

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a meta-training run.")
_STEP = flags.DEFINE_integer("step", None, "The checkpoint's step (default: the newest).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = config_lib.validate(config_lib.workdir_config(_WORKDIR.value))
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  path = exported.export(config, _WORKDIR.value, _STEP.value)
  print((path / "README.md").read_text())
  print(f"export: {path}")


if __name__ == "__main__":
  app.run(main)
