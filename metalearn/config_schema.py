"""The experiment config schema: every key an experiment may set, its default and its type.

:func:`default_config` builds it; the ``task``, ``model`` and ``learner`` groups' keys depend on
their ``name`` (:data:`TASKS`, :data:`MODELS`, :func:`learner_defaults`).
:mod:`metalearn.config_validation` checks a config against it; :mod:`metalearn.config` is the
public entry point to both.
"""

import math

import ml_collections

from metalearn.learners import LOPTS
from metalearn.learners.sequential import SEQUENTIAL_LEARNERS

SCHEDULES = ("constant", "linear", "cosine")
# Task families a teacher can steer (they have task_space and at_task).
STEERABLE_TASKS = ("icl_regression", "textbook_regression", "sinusoid",
                   "classification_training")
# Out-of-family evaluation sets of learned optimizers (metalearn/lopt_evaluation.py).
OOD_SETS = ("wider", "deeper", "other_data", "omniglot_data", "long_horizon")
# Out-of-distribution prompts of in-context regression (Garg et al. 2022, section 4).
ICL_OOD_SETS = ("scaled_x", "skewed_covariance", "noisy_labels")
# Keys that may change when a run resumes in the same workdir.
RESUMABLE_CHANGES = ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                     "steps_per_call", "eval", "mesh", "monitor")


class ConfigError(ValueError):
  """A config key is unknown, mistyped or out of range."""


# The keys of ``task`` and ``model`` depend on their ``name``: each name's keys and defaults.
TASKS = {
    # K-shot sinusoid regression (metalearn.tasks.SinusoidFamily).
    "sinusoid": dict(name="sinusoid", num_support=10, num_query=10, amplitude=(0.1, 5.0),
                     phase=(0.0, math.pi), x_range=(-5.0, 5.0)),
    # N-way K-shot image classification (metalearn.tasks.FewShotClassification) on a base
    # dataset (metalearn.datasets.loading documents the protocols). num_query is per class.
    "few_shot": dict(name="few_shot", dataset="omniglot", source="zip", data_dir="",
                     cache_dir="", protocol="standard", tfds_splits=("train", "test"),
                     num_ways=5, num_support=1, num_query=1, image_size=28, rotate_train=True,
                     rotate_eval=True, split_seed=0, num_train_classes=1100,
                     num_validation_classes=100),
    # Network training for learned optimizers (metalearn.tasks.ClassificationTraining): fresh
    # batches every step; data 'images' reads a tfds dataset (its tfds_splits: train, valid).
    "classification_training": dict(
        name="classification_training", data="gaussian_mixture", network="mlp", image_size=8,
        num_classes=10, hidden=(32,), activation="relu", batch_size=128, init_scale=1.0,
        separation=(0.2, 0.6), dataset="fashion_mnist", data_dir="",
        tfds_splits=("train", "test")),
    # Noisy quadratics of random conditioning (metalearn.tasks.QuadraticTraining).
    "quadratic": dict(name="quadratic", dim=10, log10_condition=(0.0, 3.0), noise=1.0,
                      batch_size=32),
    # A tiny transformer LM on random Markov chains (metalearn.tasks.LanguageModelTraining).
    "lm_training": dict(name="lm_training", vocab_size=16, seq_len=16, width=32, num_layers=1,
                        num_heads=2, batch_size=32, temperature=0.5),
    # In-context regression prompts (metalearn.tasks.RegressionPrompts): Garg et al.'s function
    # classes and Raventos et al.'s finite pool; curriculum () or (dims_start, dims_step,
    # points_start, points_step, interval).
    "icl_regression": dict(name="icl_regression", function_class="linear", dim=5,
                           num_points=11, noise_std=0.0, x_dist="normal", sparsity=3,
                           pool_size=0, pool_seed=0, curriculum=()),
    # GPICL projected classification (metalearn.tasks.ProjectedClassification): base data
    # 'procedural' (Gaussian clusters, dim / noise / pool_size) or a tfds image dataset.
    "icl_classification": dict(name="icl_classification", num_tasks=2**8, num_points=50,
                               num_classes=10, base="procedural", dim=32, noise=0.5,
                               pool_size=10_000, image_size=8, data_dir="", tfds_split="train",
                               data_seed=0),
    # Textbooks (metalearn/tasks/textbook*.py): a book of num_chapters chapters read in order.
    # With learner 'sequential' / 'oml' the learner reads whole books; with a MAML-family
    # learner it meta-trains on single chapters (family.single_chapter_family()); both are
    # evaluated by reading held-out books (metalearn/textbook_evaluation.py).
    # Compositional regression: chapter c's targets sum the first c basis functions.
    "textbook_regression": dict(name="textbook_regression", num_chapters=5,
                                exercises_per_chapter=10, batch_size=10, num_query=50,
                                x_range=(-5.0, 5.0), coef_std=1.0, freq_range=(0.5, 2.0),
                                basis_seed=0, noise_std=0.0),
    # Omniglot alphabets as chapters, num_ways characters each, read class by class in
    # exercises of batch_size images (batch_size divides num_ways * num_support).
    "textbook_omniglot": dict(name="textbook_omniglot", source="zip", data_dir="", cache_dir="",
                              protocol="standard", image_size=28, num_chapters=5, num_ways=5,
                              num_support=5, batch_size=5, num_query=5),
}
TEXTBOOK_TASKS = ("textbook_regression", "textbook_omniglot")
TRAINING_TASKS = ("classification_training", "quadratic", "lm_training")
ICL_TASKS = ("icl_regression", "icl_classification")
# Classical learners evaluated on the same prompts (metalearn/icl_evaluation.py).
ICL_BASELINES = ("least_squares", "ridge", "averaging", "knn_3", "lasso", "gd", "bayes",
                 "logistic_regression")
MODELS = {
    "mlp": dict(name="mlp", hidden=(40, 40), norm="none"),
    "conv4": dict(name="conv4", filters=64, num_layers=4, norm="batch", pool="max",
                  conv_impl="im2col"),
    # Sequence models of in-context learners (metalearn.learners.sequence_models).
    "transformer": dict(name="transformer", width=64, num_layers=3, num_heads=2, mlp_ratio=4),
    "lstm": dict(name="lstm", width=64, num_layers=1),
    "lsa": dict(name="lsa", num_layers=1, init_scale=0.01),
    # Learned optimizers train the task's own network: no model of their own.
    "none": dict(name="none"),
}
# The keys of ``learner`` depend on its name: gradient learners and ProtoNets share one set;
# each learned optimizer has its architecture's options, the horizon it is trained on
# (num_inner_steps), what its learning curve records (curve) and the reference Adam step size
# of curve='train_vs_reference'.
_LOPT_COMMON = dict(num_inner_steps=100, curve="train", reference_lr=1e-3)
LEARNER_KEYS = {
    "mlp_lopt": dict(hidden=(32, 32), features="full", step_mult=1e-3, exp_mult=1e-3),
    "lstm_lopt": dict(hidden_size=20, num_layers=2, output_scale=0.1),
    "hyper_lopt": dict(hidden=(32,), init_lr=1e-3),
}


def learner_defaults(name: str) -> dict:
  """The ``learner`` group's keys and defaults for learner ``name``."""
  if name in LOPTS:
    return dict(name=name, **_LOPT_COMMON, **LEARNER_KEYS[name])
  if name == "in_context":  # token layout (metalearn.learners.in_context.LAYOUTS)
    return dict(name=name, layout="interleaved")
  if name in SEQUENTIAL_LEARNERS:  # a book's length sets the inner steps; Meta-SGD step sizes
    return dict(name=name, inner_lr=0.01, learn_inner_lr=False)
  return dict(name=name, inner_lr=0.01, num_inner_steps=1)


def lopt_eval_defaults() -> dict:
  """The ``eval`` group of learned optimizers (metalearn/lopt_evaluation.py)."""
  return dict(at_end=True, seed=1, num_tasks=16, num_tuning_tasks=8,
              baselines=("adam", "sgd_momentum"),
              lrs=(1e-4, 3.2e-4, 1e-3, 3.2e-3, 1e-2, 3.2e-2, 1e-1),
              ood=("wider", "deeper", "other_data", "long_horizon"), horizon_multiplier=5,
              valid_batches=8, report_lrs=(1e-3, 3.2e-3))


def textbook_eval_defaults() -> dict:
  """The ``eval`` group of textbook tasks (metalearn/textbook_evaluation.py): ``num_books``
  fresh books of ``split`` read in order and chapter by chapter alone, ``task_batch_size`` at
  a time; ``baselines``: () or ('random_init',)."""
  return dict(at_end=True, seed=1, split="test", num_books=100, task_batch_size=50,
              baselines=("random_init",))


def icl_eval_defaults(task: str) -> dict:
  """The ``eval`` group of in-context learners (metalearn/icl_evaluation.py): ``num_tasks``
  prompts, the baselines, ``gd_steps`` of the gradient-descent baseline, the numbers of
  in-context examples the table reports, and out-of-distribution prompt sets."""
  regression = task == "icl_regression"
  return dict(at_end=True, seed=1, num_tasks=1280, task_batch_size=256,
              baselines=(("least_squares", "averaging", "knn_3") if regression
                         else ("logistic_regression",)),
              gd_steps=(1, 2, 3), report_points=(0, 1, 2, 5, 10), ood=())


def default_config(task: str = "sinusoid", model: str = "mlp",
                   learner: str = "maml") -> ml_collections.ConfigDict:
  """Every config key with its default: MAML on 10-shot sinusoids at the paper's settings.

  ``task`` / ``model`` / ``learner`` pick the key sets of the ``task``, ``model`` and
  ``learner`` groups (:data:`TASKS`, :data:`MODELS`, :func:`learner_defaults`); the
  ``pretrained`` evaluation baseline is only on for regression; learned optimizers get their
  own ``eval`` group (:func:`lopt_eval_defaults`).
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = dict(TASKS[task])
  c.model = dict(MODELS[model])
  c.learner = learner_defaults(learner)
  c.objective = "final"
  # reference_loss: L_ref of 'progress'; discount: gamma of 'discounted_progress'.
  c.objective_options = dict(reference_loss=0.0, discount=0.9)
  # 'initial': measure curves as ratios to the learner at its initial meta-parameters
  # (metalearn/learners/baselined.py); '': plain curves.
  c.baseline = ""
  # A teacher picking each outer step's task (metalearn/curriculum): '' (none: tasks drawn
  # from the whole family), or one of TEACHERS; grid: cells per axis when an arm-picking
  # teacher drives a continuous task space; options: the teacher's keyword arguments.
  c.curriculum = dict(teacher="", grid=4, options={})
  # Fixed tasks of the full family measured at every log (0: off).
  c.monitor = dict(num_tasks=0, seed=2)
  # sigma / stagger: perturbation scale of es, truncated_es and pes; staggered starts (pes/tes).
  c.estimator = dict(name="backprop", remat=False, truncation_length=1, sigma=0.01,
                     stagger=True)
  c.meta_batch_size = 25
  c.num_steps = 70_000
  c.optimizer = dict(name="adam", learning_rate=1e-3, schedule="constant", clip_grad_norm=0.0,
                     kwargs={})
  c.steps_per_call = 500
  c.log_every = 1000
  c.checkpoint_every = 10_000
  c.keep_checkpoints = 3
  c.max_consecutive_nonfinite = 20
  # Devices the meta-batch is split over (metalearn/parallel.py); -1: every device of every
  # process. May change on resume: results do not depend on it. cpu_devices: split the host's
  # CPU into that many devices at start (-1: one per core; 0: JAX's default), so a CPU run's
  # mesh spans every core (parallel.use_cpu_devices); no effect on accelerator hosts.
  c.mesh = dict(data=-1, cpu_devices=0)
  c.eval = dict(at_end=True, seed=1, split="test", num_tasks=600, num_query=100,
                num_inner_steps=10, report_steps=(0, 1, 5, 10),
                baselines=(("random_init", "pretrained") if task == "sinusoid"
                           else ("random_init",)),
                pretrain_steps=10_000, pretrain_lr=1e-3,
                finetune_lrs=(0.001, 0.003, 0.01, 0.03, 0.1), num_tuning_tasks=200,
                num_plot_tasks=4, task_batch_size=100)
  if learner in LOPTS:
    c.eval = lopt_eval_defaults()
  if learner == "in_context":
    c.eval = icl_eval_defaults(task)
  if task in TEXTBOOK_TASKS:
    c.eval = textbook_eval_defaults()
  return c
