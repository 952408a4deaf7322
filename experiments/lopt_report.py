r"""Writes the learned-optimizer reproduction table from an evaluated workdir
(:mod:`metalearn.reproductions.lopt`).

  python experiments/lopt_report.py --config=experiments/configs/learned_optimizer.py:mlp_lopt,small \
    --workdir=workdirs/learned_optimizer/mlp_lopt_small --out=results/learned_optimizer_small
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn import logs
from metalearn import parallel
from metalearn.reproductions import lopt

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Evaluated meta-training workdir.")
_OUT = flags.DEFINE_string("out", None, "Output path without suffix.")
_COMMAND = flags.DEFINE_string("command", "", "The command that made the run.")
flags.mark_flags_as_required(["config", "workdir", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = config_lib.validate(_CONFIG.value)
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  parallel.use_compile_options(config.compile)
  try:
    print(lopt.write(config, _WORKDIR.value, _OUT.value, _COMMAND.value))
  except FileNotFoundError as e:
    raise app.UsageError(str(e)) from e


if __name__ == "__main__":
  app.run(main)
