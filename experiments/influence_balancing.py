r"""PES on the influence-balancing problem (:mod:`metalearn.reproductions.influence_balancing`).

  python experiments/influence_balancing.py --out=results/pes_influence_balancing [--seeds=10]
"""

from absl import app
from absl import flags

from metalearn.reproductions import influence_balancing

_OUT = flags.DEFINE_string("out", "results/pes_influence_balancing", "Output path prefix.")
_SEEDS = flags.DEFINE_integer("seeds", 10, "Seeds per method.")
_ITERATIONS = flags.DEFINE_integer("iterations", 3000, "Outer SGD steps.")
_PARTICLES = flags.DEFINE_integer("particles", 1000, "ES/PES trajectories (pairs x 2).")
_SIGMA = flags.DEFINE_float("sigma", 0.1, "ES/PES perturbation scale.")
_LR = flags.DEFINE_float("lr", 1e-4, "Outer SGD learning rate.")
_EVAL_STEPS = flags.DEFINE_integer("eval_steps", 500, "Evaluation unroll length.")
_TOL = flags.DEFINE_float("tolerance", 1e-3, "Converged when |theta - theta*| < tolerance.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  print(influence_balancing.run(_OUT.value, _SEEDS.value, _ITERATIONS.value, _PARTICLES.value,
                                _SIGMA.value, _LR.value, _EVAL_STEPS.value, _TOL.value))


if __name__ == "__main__":
  app.run(main)
