r"""Short-horizon bias (Wu et al. 2018) on the noisy quadratic model: the settings of
:func:`metalearn.reproductions.short_horizon_bias.run`.

  python experiments/short_horizon_bias.py \
    --config=experiments/configs/reproductions/short_horizon_bias.py:small \
    --out=results/short_horizon_bias_small [--config.seeds=5 ...]

Sizes: ``tiny`` (n = 10, T = 120; every method for a few steps: what the tests run), ``small``
(n = 100, T = 1000, 2 seeds; 3.3 minutes on a 2-core CPU), ``full`` (n = 1000, T = 1000,
5 seeds and longer meta-training). ``launch/reproduce/short_horizon_bias.sh SIZE`` runs one.

Hardware and wall time (measured on a 2-core AMD EPYC CPU, one core, cold start, compilation
included; ``tiny`` compiles with ``compile.optimize=False``; a test fails a tiny run over 3x
this): ``tiny`` 15 s.
Expected (``small``): the greedy schedule decays 22x by step 100 and ends at 3.05x the
optimum's final expected loss (results/short_horizon_bias_small.md).
"""

import ml_collections

SIZES = ("tiny", "small", "full")


def get_config(arg: str = "small") -> ml_collections.ConfigDict:
  if arg not in SIZES:
    raise ValueError(f"unknown size {arg!r}; use one of {SIZES}")
  c = ml_collections.ConfigDict(dict(
      dim=100, steps=1000, log10_condition=3.0, spectrum="log", noise=1.0, seeds=2,
      init_lr=0.1, exact_iterations=1000, exact_lr=0.05, greedy_epochs=20, greedy_batch=32,
      greedy_lr=0.03, backprop_iterations=500, backprop_batch=8, backprop_lr=0.03,
      pes_iterations=3000, pes_pairs=64, pes_truncation=10, pes_sigma=0.1, pes_lr=0.1,
      knots=11, sensitivity=True, compile=dict(optimize=True)))
  if arg == "full":
    c.update(dict(dim=1000, seeds=5, exact_iterations=3000, greedy_epochs=40,
                  backprop_iterations=2000, pes_iterations=10000, pes_pairs=128))
  elif arg == "tiny":  # compilation dominates: compile as the meta-training configs' tiny do
    c.update(dict(dim=10, steps=120, seeds=1, exact_iterations=100, greedy_epochs=2,
                  greedy_batch=4, backprop_iterations=20, backprop_batch=2, pes_iterations=30,
                  pes_pairs=4, knots=4))
    c.compile.optimize = False
  return c
