r"""A learned optimizer meta-trained with PES on MLP classification tasks with fresh data.

Command (``ARG``: a learned optimizer, a size, options, comma-separated):

  python experiments/meta_train.py \
    --config=experiments/configs/learned_optimizer.py:mlp_lopt,small --workdir=/tmp/lopt

Learned optimizers: ``mlp_lopt`` (per-parameter MLP over 19 features, two hidden layers of 32:
learned_optimization's MLPLOpt), ``small_lopt`` (the same with one hidden layer of 8 and
Adafactor-style features), ``lstm_lopt`` (Andrychowicz et al. 2016), ``hyper_lopt`` (a per-tensor
step-size and momentum controller). Sizes: ``tiny`` (seconds; tests), ``small`` (<= 20 minutes of
meta-training on a 2-core CPU), ``full`` (GPU/TPU, hours).

Tasks: a 64-32-10 ReLU MLP (8x8 inputs) learning the labels of a random one-hidden-layer tanh
teacher network (a new teacher per task) on Gaussian inputs, batch 128, a fresh batch every step
(so no optimizer scores by memorising); horizon 1000 inner steps, PES truncations of 50, 8
antithetic pairs, sigma 0.01, outer Adam 3e-3, 2500 outer steps (``small_lopt``: 12,000). The
objective is ``late_mean``: the training loss along the trajectory weighted by 2t/(T+1), so
ending low counts more than getting low early (PES scores each segment by its place in the
horizon). With the plain mean (``objective=mean``) the optimizer matched tuned Adam's speed but
ended where Adam 3.2e-3 ends (results/learned_optimizer_mean_small.md); ``late_mean`` ends
below it. (The Gaussian-mixture data are too easy for this: every step size from 1e-3 to 1e-2
reaches the Bayes floor within 1000 steps; they serve as the out-of-family data set.)
Evaluation (``launch/reproduce/learned_optimizer.sh``): 16 held-out tasks of the family and
out-of-family sets against Adam and SGD with momentum at every step size of a half-decade grid
(metalearn/evaluators/optimizer.py).

A teacher (``teacher=<name>``, one of :data:`metalearn.curriculum.TEACHERS`) picks each outer
step's network instead: the tasks become 64-64-64-10 MLPs whose width (8 to 64, geometric) and
depth (1 to 3 hidden layers) the teacher sets (``ClassificationTraining.at_task``), scored by
the negated meta-loss; the full-size network's meta-loss is monitored at every log. A teacher
needs whole unrolls (a truncated estimator's step would score tasks an earlier proposal drew),
so ``teacher=`` switches the default estimator to ``es``.

Hardware and wall time (``small``, a 2-core AMD EPYC CPU split into two JAX devices,
``mesh.cpu_devices``): ``mlp_lopt`` meta-trains in about 6 minutes, ``small_lopt`` (12,000
outer steps) in about 15; the evaluation takes about 6 more. Tiny, on one core from a cold
start, compilation and evaluation included (``tiny`` compiles with ``compile.optimize=False``;
a test fails a tiny run over 3x this): ``mlp_lopt,tiny`` 23 s. Results:
results/learned_optimizer_small.md, results/learned_optimizer_small_lopt_small.md.
"""

import ml_collections

LOPTS = ("mlp_lopt", "small_lopt", "lstm_lopt", "hyper_lopt")
SIZES = ("tiny", "small", "full")
# The estimators this config sets up, with their settings: PES truncations of 50, sigma 0.01.
ESTIMATORS = {"pes": dict(truncation_length=50, sigma=0.01),
              "truncated_es": dict(truncation_length=50, sigma=0.01),
              "es": dict(sigma=0.01), "truncated_backprop": dict(truncation_length=50),
              "backprop": {}}


def get_config(arg: str = "mlp_lopt,small"):
  """``arg``: a learned optimizer from :data:`LOPTS`, a size from :data:`SIZES`, and
  ``objective=<name>`` / ``estimator=<name>`` / ``teacher=<name>``, comma-separated."""
  lopt, size, objective, estimator, teacher = "mlp_lopt", "small", "late_mean", None, ""
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in LOPTS:
      lopt = token
    elif token in SIZES:
      size = token
    elif token.startswith("objective="):
      objective = token.split("=", 1)[1]
    elif token.startswith("estimator="):
      estimator = token.split("=", 1)[1]
    elif token.startswith("teacher="):
      teacher = token.split("=", 1)[1]
    else:
      raise ValueError(f"unknown config argument {token!r}; use one of {LOPTS}, one of {SIZES}, "
                       "objective=<name>, estimator=<name>, teacher=<name>")
  if estimator is None:
    estimator = "es" if teacher else "pes"
  c = ml_collections.ConfigDict()
  c.task = dict(name="classification_training", data="teacher", hidden=(32,), batch_size=128)
  c.model = dict(name="none")
  c.learner = dict(name="mlp_lopt" if lopt == "small_lopt" else lopt)
  if lopt == "small_lopt":
    c.learner.update(hidden=(8,), features="adafactor")
  c.objective = dict(name=objective)
  if estimator not in ESTIMATORS:
    raise ValueError(f"estimator={estimator!r}: this config sets up {sorted(ESTIMATORS)}")
  c.estimator = dict(name=estimator, **ESTIMATORS[estimator])
  c.curriculum = dict(name=teacher)
  c.optimizer, c.mesh, c.monitor = dict(), dict(), dict()
  c.learner.num_inner_steps = 1000
  c.meta_batch_size = 8
  c.optimizer.learning_rate = 3e-3
  # small_lopt is about twice as cheap per step but learns more slowly per outer step: it
  # takes 12,000 (about 15 minutes on two CPU devices; 6000 gave 7/16 wins vs Adam 3.2e-3)
  c.num_steps = 12_000 if lopt == "small_lopt" else 2500
  c.steps_per_call = 50
  c.log_every = 100
  c.checkpoint_every = 2000 if lopt == "small_lopt" else 500
  c.keep_checkpoints = 50  # every checkpoint is evaluated for time to quality
  c.eval = dict(ood=("wider", "deeper", "other_data", "long_horizon"))
  c.eval.valid_batches = 32  # 4096 fresh examples per final validation loss
  # On a CPU host, one JAX device per core of the 2-core reference machine: the 2B runs are
  # split over both cores (XLA runs one device's batched matmuls on one core), 1.9-2.2x the
  # meta-training throughput (experiments/benchmark.py --suites=lopt --cpu_devices=2).
  # Accelerator hosts ignore it; the results do not depend on it beyond float summation order.
  # (Pinned to one core, e.g. PIN=1 in launch/reproduce, set --config.mesh.cpu_devices=1.)
  c.mesh.cpu_devices = 2 if size != "full" else 0
  if teacher:
    c.task.hidden = (64, 64, 64)
    c.monitor.num_tasks = 64
  if size == "tiny":
    c.compile = dict(optimize=False)  # a smoke run: fast compilation over fast steps
    c.learner.num_inner_steps = 20
    if "truncation_length" in c.estimator:
      c.estimator.truncation_length = 10
    c.meta_batch_size, c.num_steps, c.steps_per_call = 2, 4, 2
    c.log_every = c.checkpoint_every = 2
    c.task.batch_size = 16
    c.eval.num_tasks, c.eval.num_tuning_tasks, c.eval.valid_batches = 2, 2, 1
    c.eval.lrs, c.eval.report_lrs, c.eval.baselines = (1e-3, 1e-2), (1e-3,), ("adam",)
    c.eval.ood, c.eval.horizon_multiplier = ("long_horizon",), 2
    if teacher:
      c.task.hidden, c.monitor.num_tasks = (16, 16), 4
  elif size == "full":
    c.meta_batch_size, c.num_steps = 64, 50_000
    c.log_every, c.checkpoint_every = 500, 2500
  return c
