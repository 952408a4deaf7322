r"""Short-horizon bias on the noisy quadratic model
(:mod:`metalearn.reproductions.short_horizon_bias`).

  python experiments/short_horizon_bias.py \
    --config=experiments/configs/reproductions/short_horizon_bias.py:small \
    --out=results/short_horizon_bias_small
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import logs
from metalearn import parallel
from metalearn.reproductions import short_horizon_bias

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/configs/reproductions/short_horizon_bias.py:SIZE")
_OUT = flags.DEFINE_string("out", None, "Output path prefix (OUT.md, .csv, .json, .png).")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  config = _CONFIG.value
  parallel.use_compile_options(config.compile)
  settings = {k: v for k, v in config.items() if k not in ("compile", "sensitivity")}
  try:
    print(short_horizon_bias.run(settings, _OUT.value, config.sensitivity))
  except ValueError as e:
    raise app.UsageError(f"{e} (set them with --config.KEY=VALUE)") from e


if __name__ == "__main__":
  app.run(main)
