r"""Evaluates the newest checkpoint in ``--workdir``: eval.json, plots and a printed table.

  python experiments/evaluate.py --workdir=/tmp/maml_sinusoid

The config is the workdir's (``config.json``, written by meta_train.py); ``--config`` (with
``--config.eval.*`` overrides, say) must match it outside the keys a resumed run may change.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn import evaluators
from metalearn import logs
from metalearn import parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=False, accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a meta-training run.")
_FORCE = flags.DEFINE_bool("force_eval", False, "Evaluate even when the workdir's eval.json "
                           "already evaluated its newest checkpoint with this config.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:  # an unknown key, wrong type or bad value: one clear line, before anything compiles
    if _CONFIG.value is None:
      config = config_lib.validate(config_lib.workdir_config(_WORKDIR.value))
    else:
      config = config_lib.validate(_CONFIG.value)
      config_lib.check_matches_workdir(config, _WORKDIR.value)
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  parallel.use_compile_options(config.compile)
  evaluators.evaluate_and_report(config, _WORKDIR.value, force=_FORCE.value)


if __name__ == "__main__":
  app.run(main)
