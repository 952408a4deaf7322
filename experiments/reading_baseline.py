r"""Tunes plain fine-tuning (Adam's learning rate and the replay share) for meta-learned
reading on the validation chapters and evaluates it on the test chapters
(:func:`metalearn.reproductions.meta_reading.tune_baseline`): writes WORKDIR/baseline.json.

  python experiments/reading_baseline.py \
    --config=experiments/configs/lm/meta_reading.py:small,adam \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE --workdir=/tmp/reading/adam
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn import logs
from metalearn import parallel
from metalearn.reproductions import meta_reading

_CONFIG = config_flags.DEFINE_config_file("config", None, "A meta_reading.py config, reader "
                                          "'adam'.", lock_config=False,
                                          accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where baseline.json is written.")
_LRS = flags.DEFINE_list("lrs", ["1e-4", "3e-4", "1e-3", "1.5e-3", "2e-3", "3e-3", "1e-2"],
                         "Adam learning rates tried (denser where the forgetting limit "
                         "starts to bind at small: a coarse grid would flatter any reader "
                         "that learns its rate).")
_SHARES = flags.DEFINE_list("shares", ["0", "0.25", "0.5"], "Replay shares tried.")
_LIMIT = flags.DEFINE_float("limit", meta_reading.LIMIT, "The largest allowed drop of the "
                            "known people's accuracy.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:  # an unknown key, wrong type or bad value: one clear line, before anything compiles
    config = config_lib.validate(_CONFIG.value)
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  parallel.use_compile_options(config.compile)
  out = meta_reading.tune_baseline(config, [float(v) for v in _LRS.value],
                                   [float(v) for v in _SHARES.value],
                                   pathlib.Path(_WORKDIR.value), _LIMIT.value)
  chosen, test = out["chosen"], out["test"]
  print(f"chosen on validation: lr {chosen['lr']:g}, replay share {chosen['replay_share']:g}"
        + ("" if chosen["within_limit_on_validation"] else " (no cell within the limit)"))
  print(f"test: new {100 * test['new_accuracy']:.1f}%, known {100 * test['known_before']:.1f}%"
        f" -> {100 * test['known_after']:.1f}%")
  print(f"baseline.json: {pathlib.Path(_WORKDIR.value) / 'baseline.json'}")


if __name__ == "__main__":
  app.run(main)
