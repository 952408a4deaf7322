r"""Curriculum teachers on the prerequisite grid (:mod:`metalearn.reproductions.teacher_grid`).

  python experiments/teacher_grid.py --out=results/teacher_grid_small [--episodes=20000 --seeds=10]
"""

import os
import shlex
import sys

from absl import app
from absl import flags

from metalearn.reproductions import teacher_grid

_OUT = flags.DEFINE_string("out", "results/teacher_grid_small", "Output path prefix.")
_EPISODES = flags.DEFINE_integer("episodes", 20000, "Episodes (practice steps) per run.")
_SEEDS = flags.DEFINE_integer("seeds", 10, "Seeds per teacher.")
_RECORD_EVERY = flags.DEFINE_integer("record_every", 100, "Episodes between curve points.")
_SEED = flags.DEFINE_integer("seed", 0, "Base PRNG seed.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  command = shlex.join(["python", "experiments/teacher_grid.py", *(
      a.replace(os.getcwd() + os.sep, "") for a in sys.argv[1:])])
  try:
    print(teacher_grid.run(_OUT.value, _EPISODES.value, _SEEDS.value, _RECORD_EVERY.value,
                           _SEED.value, command))
  except ValueError as e:
    raise app.UsageError(f"{e} (flags --episodes, --seeds, --record_every)") from e


if __name__ == "__main__":
  app.run(main)
