r"""A learning-progress teacher over a book's chapters at LM scale
(:mod:`metalearn.reproductions.textbook_teacher`): writes OUT.md / .csv / .png / .json.

  python experiments/textbook_teacher.py \
    --config=experiments/configs/lm/meta_reading.py:small,adam,prerequisites \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE \
    --teachers=uniform,fixed,tscl,exp3s --rounds=40 --steps_per_round=5 --seeds=3 \
    --out=results/lm_textbook_teacher_small
"""

import os
import pathlib
import shlex
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn import logs
from metalearn import parallel
from metalearn.reproductions import textbook_teacher

_CONFIG = config_flags.DEFINE_config_file("config", None, "A meta_reading.py config, reader "
                                          "'adam' (the task, the base model, the reader).",
                                          lock_config=False, accept_new_attributes=True)
_TEACHERS = flags.DEFINE_list("teachers", list(textbook_teacher.TEACHER_NAMES),
                              "Teachers compared (curriculum names).")
_ROUNDS = flags.DEFINE_integer("rounds", 40, "Rounds of the budget (a chapter each).")
_STEPS = flags.DEFINE_integer("steps_per_round", 5, "Fine-tuning steps per round.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per teacher.")
_OUT = flags.DEFINE_string("out", None, "Output path prefix.")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = config_lib.validate(_CONFIG.value)
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  if min(_ROUNDS.value, _STEPS.value, _SEEDS.value) < 1:
    raise app.UsageError("--rounds, --steps_per_round and --seeds: at least 1")
  parallel.use_compile_options(config.compile)
  command = shlex.join(["python", "experiments/textbook_teacher.py", *(
      a.replace(os.getcwd() + os.sep, "") for a in sys.argv[1:])])
  try:
    textbook_teacher.run(config, _TEACHERS.value, _ROUNDS.value, _STEPS.value, _SEEDS.value,
                         pathlib.Path(_OUT.value), command)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
