r"""Pretrains a base decoder LM on an offline corpus and exports it as an HF-format directory.

  python experiments/lm_pretrain.py --config=experiments/configs/lm/pretrain.py:small \
    --workdir=/tmp/metalearn/lm_small [--config.lm.name=qwen3 ...]

Re-running the command resumes the run in ``--workdir``; ``WORKDIR/model`` is the export
(``config.json``, safetensors, tokenizer), ``WORKDIR/summary.json`` the result.
"""

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import logs
from metalearn import parallel
from metalearn.lm import pretrain
from metalearn.registry import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file[:size].",
                                          lock_config=False, accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, export.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = pretrain.validate(_CONFIG.value)
  except ConfigError as e:
    logs.exit_with(e)
  parallel.initialize()
  summary = pretrain.run(config, _WORKDIR.value)
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  app.run(main)
