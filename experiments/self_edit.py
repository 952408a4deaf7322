r"""Self-written study notes rewarded by what they teach, trained with ReST-EM
(:mod:`metalearn.reproductions.self_edit`): writes OUT.md / .csv / .png / .json.

  python experiments/self_edit.py \
    --config=experiments/configs/lm/meta_reading.py:small,adam \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE \
    --iterations=10 --people=8 --samples=4 --sentences=6 --max_tokens=16 --seeds=3 \
    --workdir=/tmp/metalearn/self_edit --out=results/lm_self_edit_small

A re-run with the same ``--workdir`` skips the iterations each seed finished.
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

_CONFIG = config_flags.DEFINE_config_file("config", None, "A meta_reading.py config, reader "
                                          "'adam' (the world, the base model, the reader).",
                                          lock_config=False, accept_new_attributes=True)
_ITERATIONS = flags.DEFINE_integer("iterations", 10, "ReST-EM iterations.")
_PEOPLE = flags.DEFINE_integer("people", 8, "Training people per iteration.")
_SAMPLES = flags.DEFINE_integer("samples", 4, "Notes sampled per person.")
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 48, "A sentence's most tokens.")
_SENTENCES = flags.DEFINE_integer("sentences", 1, "Sentences in a note, each sampled from "
                                  "the biography and the name.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "The writer's sampling temperature.")
_RANK = flags.DEFINE_integer("writer_rank", 8, "The writer's LoRA rank.")
_LR = flags.DEFINE_float("writer_lr", 1e-3, "The writer's Adam learning rate.")
_SFT = flags.DEFINE_integer("sft_steps", 2, "Writer updates per iteration on the kept notes.")
_WARM = flags.DEFINE_integer("warm_start", 0, "Writer updates restating training people's "
                            "other biographies before the first iteration (0: none).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where each seed's iterations and writer "
                               "states are kept (seed_S/).")
_OUT = flags.DEFINE_string("out", None, "Output path prefix.")
flags.mark_flags_as_required(["config", "workdir", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = config_lib.validate(_CONFIG.value)
  except config_lib.ConfigError as e:
    logs.exit_with(e)
  if _SEEDS.value < 1:
    raise app.UsageError("--seeds: at least 1")
  from metalearn.reproductions import self_edit  # pylint: disable=g-import-not-at-top
  try:  # one line naming the fix, before anything compiles
    opts = self_edit.Options(
        iterations=_ITERATIONS.value, people=_PEOPLE.value, samples=_SAMPLES.value,
        max_tokens=_MAX_TOKENS.value, sentences=_SENTENCES.value,
        temperature=_TEMPERATURE.value, writer_rank=_RANK.value, writer_lr=_LR.value,
        sft_steps=_SFT.value, warm_start=_WARM.value)
    self_edit.check(config, opts)
  except ValueError as e:
    logs.exit_with(e)
  parallel.use_compile_options(config.compile)
  command = shlex.join(["python", "experiments/self_edit.py", *(
      a.replace(os.getcwd() + os.sep, "") for a in sys.argv[1:])])
  self_edit.run(config, opts, _SEEDS.value, pathlib.Path(_WORKDIR.value),
                pathlib.Path(_OUT.value), command)
  print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
