r"""In-context learners: sequence models meta-trained to learn from their prompt.

Command (``ARG``: an experiment, a size and options, comma-separated):

  python experiments/meta_train.py \
    --config=experiments/configs/in_context.py:linear_regression,small --workdir=/tmp/icl

Experiments (each has ``tiny`` (seconds; tests), ``small`` (minutes on a 2-core CPU) and
``full`` (the paper's size, GPU/TPU)):

* ``linear_regression`` (Garg et al. 2022, Fig. 2): a GPT-2 style transformer reads
  interleaved ``x, y`` tokens of noiseless linear functions, ``x, w ~ N(0, I_d)``. small: d = 5,
  11 points, width 64, 3 layers, 2 heads, batch 64, Adam 1e-3 (cosine), 20k steps. full: d = 20,
  41 points, 12 layers, 8 heads, width 256, batch 64, Adam 1e-4, 500k steps, with Garg's
  curriculum (d 5 -> 20, points 11 -> 41, every 2000 steps) and the out-of-distribution prompts.
  ``class=sparse_linear|relu_net|decision_tree`` picks another function class.
* ``gd`` (von Oswald et al. 2023): ``layers=K`` linear self-attention layers, d = 10, 10
  context points, ``x ~ U(-0.5, 0.5)^d``, trained on the loss of the query after all 10.
* ``task_diversity`` (Raventos et al. 2023): noisy linear regression (noise 0.5) with ``w``
  drawn from a finite pool of ``pool=M`` tasks; d = 4 (small) / 8 (full), 16 points.
* ``gpicl`` (Kirsch et al. 2022): projected classification with ``tasks=2^n`` distinct
  tasks, packed tokens ``(x_k, y_{k-1})``.
* ``curriculum``: linear regression with the difficulty (active dimension, prompt length)
  set by ``teacher=none|garg|uniform|alp_gmm|tscl|exp3s``: none (always the full task), Garg's
  hand-made schedule, or a teacher of :mod:`metalearn.curriculum`; the full task's error is
  monitored at every log (``monitor``). small: d = 5, 11 points, width 32, 2 layers, batch
  32, 6000 steps. full: Garg's size (d = 20, 41 points, 12 layers, width 256), 100k steps.

``launch/reproduce/icl_*.sh`` and ``gpicl.sh`` run the sweeps and write tables and plots.
Hardware and wall time: see each script and its results/*.md. Tiny runs (one core of a 2-core
AMD EPYC CPU, cold start, compilation and evaluation included; ``tiny`` compiles with
``compile.optimize=False``; a test fails a tiny run over 3x these): ``linear_regression,tiny``
15 s, ``gd,tiny`` 11 s, ``task_diversity,tiny`` 14 s, ``gpicl,tiny`` 14 s, ``curriculum,tiny``
13 s.
"""

import ml_collections

EXPERIMENTS = ("linear_regression", "gd", "task_diversity", "gpicl", "curriculum")
# curriculum's difficulty setters: no curriculum, Garg's schedule, or a teacher.
CURRICULA = ("none", "garg", "uniform", "alp_gmm", "tscl", "exp3s")
SIZES = ("tiny", "small", "full")


def _steps(c, steps: int, chunk: int = 500):
  c.num_steps = steps
  c.steps_per_call = min(chunk, steps)
  c.log_every = c.steps_per_call * max(1, steps // c.steps_per_call // 20)
  c.checkpoint_every = c.steps_per_call * max(1, steps // c.steps_per_call // 5)
  c.keep_checkpoints = 2


def get_config(arg: str = "linear_regression,small"):
  """``arg``: one of :data:`EXPERIMENTS`, one of :data:`SIZES`, and options ``class=``,
  ``layers=``, ``pool=``, ``tasks=``, ``layout=``, ``model=``, ``teacher=``, comma-separated."""
  experiment, size, opts = "linear_regression", "small", {}
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in EXPERIMENTS:
      experiment = token
    elif token in SIZES:
      size = token
    elif "=" in token and token.split("=")[0] in ("class", "layers", "pool", "tasks", "layout",
                                                  "model", "teacher"):
      opts[token.split("=")[0]] = token.split("=", 1)[1]
    else:
      raise ValueError(f"unknown config argument {token!r}; use one of {EXPERIMENTS}, one of "
                       f"{SIZES}, class=, layers=, pool=, tasks=, layout=, model=, teacher=")
  c = {"linear_regression": _linear_regression, "gd": _gd,
       "task_diversity": _task_diversity, "gpicl": _gpicl,
       "curriculum": _curriculum}[experiment](size, opts)
  if size == "tiny":  # a smoke run: fast compilation over fast steps
    c.compile = dict(optimize=False)
  return c


def _base(task, model, **task_options):
  """The groups every experiment here sets: ``task`` and ``model`` named, the in-context
  learner, and empty groups that ``--config.<group>.<key>=`` can fill."""
  c = ml_collections.ConfigDict()
  c.task = dict(name=task, **task_options)
  c.model = dict(name=model)
  c.learner = dict(name="in_context")
  c.estimator = dict(name="backprop")
  c.objective = dict(name="mean_all")  # every prediction, the zero-shot one too (Garg)
  c.curriculum = dict(name="")
  c.eval, c.optimizer, c.mesh, c.monitor = dict(), dict(), dict(), dict()
  return c


def _transformer(c, width, layers, heads):
  c.model.width, c.model.num_layers, c.model.num_heads = width, layers, heads


def _linear_regression(size, opts):
  model = opts.get("model", "transformer")
  c = _base("icl_regression", model, function_class=opts.get("class", "linear"))
  c.learner.layout = opts.get("layout", "interleaved")
  c.meta_batch_size = 64
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.clip_grad_norm = 1.0
  c.eval.baselines = ("least_squares", "averaging", "knn_3", "gd") + (
      ("lasso",) if c.task.function_class == "sparse_linear" or size == "full" else ())
  if size == "tiny":
    c.task.dim, c.task.num_points = 3, 7
    if model == "transformer":
      _transformer(c, 16, 1, 2)
    c.meta_batch_size, c.eval.num_tasks, c.eval.report_points = 16, 64, (0, 1, 3, 6)
    _steps(c, 20, 10)
  elif size == "small":
    c.task.dim, c.task.num_points = 5, 11
    if model == "transformer":
      _transformer(c, 64, 3, 2)
    c.eval.report_points = (0, 1, 2, 3, 5, 10)
    _steps(c, 20_000)
  else:
    c.task.dim, c.task.num_points, c.task.curriculum = 20, 41, (5, 1, 11, 2, 2000)
    if model == "transformer":
      _transformer(c, 256, 12, 8)
    c.optimizer.learning_rate, c.optimizer.schedule = 1e-4, "constant"
    c.eval.report_points = (0, 1, 5, 10, 15, 20, 30, 40)
    c.eval.ood = ("scaled_x", "skewed_covariance", "noisy_labels")
    _steps(c, 500_000, 1000)
    c.keep_checkpoints = 3
  return c


def _gd(size, opts):
  c = _base("icl_regression", "lsa", dim=10, num_points=11, x_dist="uniform")
  c.learner.layout = "prefix"
  c.model.num_layers = int(opts.get("layers", 1))
  c.objective.name = "final"  # the query after all 10 context points
  c.meta_batch_size = 256 if size != "full" else 2048
  # deeper LSA stacks plateau from a small init at Adam 1e-3: 1e-2 (cosine) from init 0.05
  c.model.init_scale = 0.05
  c.optimizer.learning_rate, c.optimizer.schedule = 1e-2, "cosine"
  c.eval.baselines = ("least_squares", "gd")
  c.eval.gd_steps = tuple(range(1, max(3, c.model.num_layers) + 1))
  c.eval.num_tasks = 4096
  c.eval.report_points = (0, 1, 5, 10)
  if size == "tiny":
    c.meta_batch_size, c.eval.num_tasks = 32, 256
    _steps(c, 20, 10)
  else:
    _steps(c, 4000 if size == "small" else 40_000)
  return c


def _task_diversity(size, opts):
  pool = int(opts.get("pool", 2 ** 6))
  c = _base("icl_regression", "transformer",
            function_class="linear_pool" if pool else "linear", pool_size=pool, noise_std=0.5)
  c.task.dim, c.task.num_points = (8, 16) if size == "full" else (4, 16)
  c.optimizer.learning_rate, c.optimizer.schedule = 1e-3, "cosine"
  c.optimizer.clip_grad_norm = 1.0
  c.meta_batch_size = 64 if size != "full" else 256
  c.eval.baselines = ("ridge", "bayes") if pool else ("ridge",)
  c.eval.report_points = (0, 1, 2, 4, 8, 15)
  if size == "tiny":
    _transformer(c, 16, 1, 2)
    c.task.dim, c.task.num_points = 2, 6
    c.meta_batch_size, c.eval.num_tasks, c.eval.report_points = 16, 64, (0, 1, 5)
    _steps(c, 20, 10)
  elif size == "small":
    _transformer(c, 64, 2, 2)
    _steps(c, 6000)
  else:
    _transformer(c, 256, 8, 8)
    _steps(c, 200_000, 1000)
  return c


def _gpicl(size, opts):
  c = _base("icl_classification", "transformer", num_tasks=int(opts.get("tasks", 2 ** 8)))
  c.learner.layout = "packed"
  c.optimizer.learning_rate, c.optimizer.schedule = 1e-3, "cosine"
  c.optimizer.clip_grad_norm = 1.0
  c.meta_batch_size = 64
  if size == "tiny":
    _transformer(c, 16, 1, 2)
    c.task.dim, c.task.num_classes, c.task.num_points, c.task.pool_size = 8, 3, 8, 300
    c.eval.num_tasks, c.eval.report_points = 64, (0, 1, 7)
    _steps(c, 20, 10)
  elif size == "small":
    _transformer(c, 64, 2, 2)
    c.task.dim, c.task.num_classes, c.task.num_points = 16, 5, 30
    c.eval.report_points = (0, 1, 5, 10, 20, 29)
    _steps(c, 3000)
  else:
    _transformer(c, 256, 4, 8)
    c.task.base, c.task.num_points, c.task.image_size = "mnist", 100, 14
    c.meta_batch_size = 128
    c.eval.report_points = (0, 1, 10, 50, 99)
    _steps(c, 100_000, 1000)
  return c


def _curriculum(size, opts):
  teacher = opts.get("teacher", "alp_gmm")
  if teacher not in CURRICULA:
    raise ValueError(f"unknown teacher={teacher!r}; choose one of {CURRICULA}")
  c = _base("icl_regression", "transformer")
  c.optimizer.learning_rate, c.optimizer.schedule = 1e-3, "cosine"
  c.optimizer.clip_grad_norm = 1.0
  c.meta_batch_size = 64
  c.eval.at_end = False  # the comparison is the monitored full-task error during training
  c.monitor.num_tasks = 256
  if size == "tiny":
    c.task.dim, c.task.num_points = 3, 7
    _transformer(c, 16, 1, 2)
    c.meta_batch_size, c.monitor.num_tasks, c.eval.report_points = 16, 16, (0, 1, 6)
    _steps(c, 20, 10)
    c.log_every, schedule = 10, (1, 1, 3, 2, 5)
  elif size == "small":
    c.task.dim, c.task.num_points = 5, 11
    _transformer(c, 32, 2, 2)
    c.meta_batch_size = 32
    c.eval.report_points = (0, 1, 3, 5, 10)
    _steps(c, 6000, 200)
    c.log_every, schedule = 200, (1, 1, 3, 2, 300)  # the full task from step 1200
  else:
    c.task.dim, c.task.num_points = 20, 41
    _transformer(c, 256, 12, 8)
    c.optimizer.learning_rate, c.optimizer.schedule = 1e-4, "constant"
    c.monitor.num_tasks = 1024
    c.eval.report_points = (0, 1, 5, 10, 20, 30, 40)
    _steps(c, 100_000, 1000)
    c.log_every, schedule = 1000, (5, 1, 11, 2, 2000)  # Garg et al.'s
  if teacher == "garg":
    c.task.curriculum = schedule
  elif teacher != "none":
    c.curriculum.name = teacher
  return c
