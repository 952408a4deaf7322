r"""Meta-trains a learner; resumes from ``--workdir`` if it holds a run; evaluates at the end.

  python experiments/meta_train.py \
    --config=experiments/configs/maml_sinusoid.py:maml --workdir=/tmp/maml_sinusoid \
    [--config.num_steps=1000 ...]

The meta-batch is split over every device (``--config.mesh.data``). Several processes (TPU
pod workers, several hosts, or ``launch/local.sh`` with ``NUM_PROCESSES``) run the same command
with ``METALEARN_COORDINATOR`` / ``METALEARN_NUM_PROCESSES`` / ``METALEARN_PROCESS_ID`` set, or
``METALEARN_DISTRIBUTED=1`` where JAX detects the cluster; process 0 writes the workdir.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn import logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=False, accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
_FORCE = flags.DEFINE_bool("force_eval", False, "Evaluate even when the workdir's eval.json "
                           "already evaluated its newest checkpoint with this config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:  # an unknown key, wrong type or bad value: one clear line, before anything compiles
    config = config_lib.validate(_CONFIG.value)  # complete: every option at its value
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  # the trainer, checkpoints and evaluators are imported once the config is known good
  import jax  # pylint: disable=g-import-not-at-top
  from metalearn import evaluators, exported, parallel, train  # pylint: disable=g-import-not-at-top
  # before any other JAX call: CPU devices, then jax.distributed (a no-op for one process)
  parallel.use_cpu_devices(config.mesh.cpu_devices)
  parallel.use_compile_options(config.compile)
  parallel.initialize()
  train.train(config, _WORKDIR.value)
  if jax.process_count() > 1:  # orbax saves are collective: the export is a one-process job
    if jax.process_index() == 0:
      print(f"export: not written by a multi-process run; write it with python "
            f"experiments/export.py --workdir={_WORKDIR.value}")
  else:  # the trained learner, usable without configs
    print(f"export: {exported.export(config, _WORKDIR.value)} (its README.md: how to load it)")
  if config.eval.at_end:  # every process evaluates on its own devices; process 0 writes
    evaluators.evaluate_and_report(config, _WORKDIR.value, force=_FORCE.value)


if __name__ == "__main__":
  app.run(main)
