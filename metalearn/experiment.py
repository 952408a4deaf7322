"""From a validated config to the pieces of an experiment, picked by name."""

import functools
from typing import Callable, NamedTuple

import ml_collections
import optax

import jax

from metalearn import estimators, models, objectives, parallel
from metalearn.curriculum.steering import Steering, make_steering
from metalearn.datasets import load_splits
from metalearn.datasets import tfds_images
from metalearn.learners import (LOPTS, InContextLearner, Learner, OptaxRule, OptimizerLearner,
                                ProtoNetLearner, make_gradient_learner, make_rule)
from metalearn.learners import sequence_models
from metalearn.learners.baselined import VersusBaseline
from metalearn.learners.sequential import SEQUENTIAL_LEARNERS, SequentialLearner
from metalearn.tasks import textbook_omniglot
from metalearn.tasks.textbook_omniglot import TextbookOmniglot
from metalearn.tasks.textbook_regression import TextbookRegression
from metalearn.tasks import (ClassificationTraining, FewShotClassification, LanguageModelTraining,
                             ProjectedClassification, QuadraticTraining, RegressionPrompts,
                             SinusoidFamily, TaskFamily)


class Experiment(NamedTuple):
  """Everything the meta-trainer and the evaluator need, built once per config.

  ``make_estimator(family)`` builds the estimator for a family: jitted code calls it with the
  family it receives as an argument (a pytree of device arrays), so datasets are never baked
  into a compiled program as constants. ``estimator`` is the one for ``family``, for eager use.
  """
  family: TaskFamily
  learner: Learner
  objective: objectives.Objective
  make_estimator: Callable[[TaskFamily], estimators.MetaGradientEstimator]
  optimizer: optax.GradientTransformation
  mesh: jax.sharding.Mesh
  steering: Steering | None = None  # the teacher of ``curriculum.teacher``; None: no teacher

  @property
  def estimator(self) -> estimators.MetaGradientEstimator:
    return self.make_estimator(self.family)


def make_family(config: ml_collections.ConfigDict, split: str = "train",
                num_query: int | None = None) -> TaskFamily:
  """The task family of ``config.task`` on ``split`` (few-shot tasks: ``train``,
  ``validation`` or ``test`` classes), with ``num_query`` overriding ``task.num_query``."""
  t = config.task
  if t.name in ("classification_training", "quadratic", "lm_training"):
    return make_training_family(t)
  if t.name in ("icl_regression", "icl_classification"):
    return make_prompt_family(t)
  if t.name in ("textbook_regression", "textbook_omniglot"):  # sequential learners read books;
    book = make_textbook_family(t, split)  # MAML-family learners train on single chapters
    return book if config.learner.name in SEQUENTIAL_LEARNERS else book.single_chapter_family()
  num_query = t.num_query if num_query is None else num_query
  if t.name == "sinusoid":
    return SinusoidFamily(num_support=t.num_support, num_query=num_query,
                          amplitude=tuple(t.amplitude), phase=tuple(t.phase),
                          x_range=tuple(t.x_range))
  splits = load_splits(t)
  if split not in splits:
    raise ValueError(f"{t.dataset} protocol {t.protocol!r} has no {split!r} split; it has "
                     f"{sorted(splits)} (set eval.split)")
  return FewShotClassification.from_classes(splits[split], t.num_ways, t.num_support,
                                            num_query)


def make_textbook_family(t: ml_collections.ConfigDict, split: str = "train"):
  """The textbook of a ``textbook_regression`` or ``textbook_omniglot`` task config (Omniglot:
  books of the ``train`` (background) or ``test`` (held-out) alphabets)."""
  if t.name == "textbook_regression":
    return TextbookRegression(t.num_chapters, t.exercises_per_chapter, t.batch_size,
                              t.num_query, tuple(t.x_range), t.coef_std, tuple(t.freq_range),
                              t.basis_seed, t.noise_std)
  splits = textbook_omniglot.load_alphabet_splits(t)
  if split not in splits:
    raise ValueError(f"textbook_omniglot has the alphabet splits {sorted(splits)}, not "
                     f"{split!r} (set eval.split)")
  return TextbookOmniglot.from_classes(splits[split], t.num_chapters, t.num_ways,
                                       t.num_support, t.num_query, t.batch_size)


def make_training_family(t: ml_collections.ConfigDict):
  """The network-training family of a ``classification_training``, ``quadratic`` or
  ``lm_training`` task config."""
  if t.name == "quadratic":
    return QuadraticTraining(t.dim, tuple(t.log10_condition), t.noise, t.batch_size)
  if t.name == "lm_training":
    return LanguageModelTraining(t.vocab_size, t.seq_len, t.width, t.num_layers, t.num_heads,
                                 t.batch_size, t.temperature)
  kwargs = dict(network=t.network, image_size=t.image_size, num_classes=t.num_classes,
                hidden=tuple(t.hidden), activation=t.activation, batch_size=t.batch_size,
                init_scale=t.init_scale, separation=tuple(t.separation))
  if t.data != "images":
    return ClassificationTraining(data=t.data, **kwargs)
  train, valid = (tfds_images.read_classes(t.dataset, split, t.data_dir or None)
                  for split in t.tfds_splits[:2])
  return ClassificationTraining.from_class_images(train, valid, **kwargs)


def make_prompt_family(t: ml_collections.ConfigDict):
  """The prompt family of an ``icl_regression`` or ``icl_classification`` task config."""
  if t.name == "icl_regression":
    return RegressionPrompts.create(
        t.function_class, t.dim, t.num_points, pool_seed=t.pool_seed, noise_std=t.noise_std,
        x_dist=t.x_dist, sparsity=t.sparsity, pool_size=t.pool_size,
        curriculum=tuple(t.curriculum))
  if t.base == "procedural":
    return ProjectedClassification.create(t.num_tasks, t.num_points, t.num_classes, t.dim,
                                          t.noise, t.pool_size, t.data_seed)
  classes = tfds_images.read_classes(t.base, t.tfds_split, t.data_dir or None)
  return ProjectedClassification.from_class_images(classes, t.num_tasks, t.num_points,
                                                   t.image_size, t.num_classes, t.data_seed)


def make_sequence_model(config: ml_collections.ConfigDict, family):
  """The sequence model ``config.model`` names, sized for ``family``'s prompts."""
  m = config.model
  out = family.num_classes if family.is_classification else 1
  if m.name == "transformer":
    tokens = family.num_points * (2 if config.learner.layout == "interleaved" else 1)
    return sequence_models.Transformer(m.width, m.num_layers, m.num_heads, out, tokens,
                                       m.mlp_ratio)
  if m.name == "lstm":
    return sequence_models.LSTM(m.width, m.num_layers, out)
  return sequence_models.LinearSelfAttention(m.num_layers, m.init_scale)


def make_rule_from_config(config: ml_collections.ConfigDict):
  """The learned optimizer (update rule) ``config.learner`` describes."""
  from metalearn.config import LEARNER_KEYS  # the keys of each learned optimizer
  l = config.learner
  return make_rule(l.name, {k: l[k] for k in LEARNER_KEYS[l.name]})


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """``optax.<name>(learning_rate=schedule, **kwargs)``, optionally after norm clipping."""
  o = config.optimizer
  lr = {
      "constant": lambda: o.learning_rate,
      "linear": lambda: optax.linear_schedule(o.learning_rate, 0.0, config.num_steps),
      "cosine": lambda: optax.cosine_decay_schedule(o.learning_rate, config.num_steps),
  }[o.schedule]()
  opt = getattr(optax, o.name)(learning_rate=lr, **o.kwargs.to_dict())
  if o.clip_grad_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(o.clip_grad_norm), opt)
  return opt


def make_learner(config: ml_collections.ConfigDict, family: TaskFamily,
                 name: str | None = None) -> Learner:
  """The learner ``name`` (default ``config.learner.name``) on ``config.model``."""
  name = name or config.learner.name
  if name == "in_context":
    return InContextLearner(make_sequence_model(config, family), family, config.learner.layout)
  if name in LOPTS:
    l = config.learner
    reference = (OptaxRule(optax.adam(l.reference_lr)) if l.curve == "train_vs_reference"
                 else None)
    return OptimizerLearner(family, make_rule_from_config(config), l.num_inner_steps, l.curve,
                            reference)
  if name == "protonet":
    init_fn, apply_fn = models.make(config.model, family.input_shape, None)
    return ProtoNetLearner(init_fn, apply_fn, family.loss, family.num_ways)
  if name in SEQUENTIAL_LEARNERS:  # reads a textbook in order (metalearn/learners/sequential.py)
    init_fn, apply_fn = models.make(config.model, family.input_shape, family.output_dim)
    return SequentialLearner(init_fn, apply_fn, family.loss, config.learner.inner_lr,
                             "oml" if name == "oml" else "full", config.learner.learn_inner_lr)
  init_fn, apply_fn = models.make(config.model, family.input_shape, family.output_dim)
  return make_gradient_learner(name, init_fn, apply_fn, family.loss, config.learner.inner_lr)


def run_keys(seed: int):
  """``(init_key, estimator_key, train_key)`` of a run: the meta-parameters' initialisation,
  the estimator's state, and the outer steps' stream (``fold_in(train_key, step)``)."""
  init_key, estimator_key, train_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, estimator_key, train_key


def inner_steps(config: ml_collections.ConfigDict, family: TaskFamily) -> int:
  """T, the inner steps of a learning curve (an in-context learner's curve spans its prompt:
  T + 1 = num_points)."""
  if config.learner.name in SEQUENTIAL_LEARNERS:  # a whole book: T = C * E exercises
    return family.num_steps
  return (family.num_points - 1 if config.learner.name == "in_context"
          else config.learner.num_inner_steps)


def _estimator(config, learner, objective, mesh, family: TaskFamily):
  e, batch = config.estimator, config.meta_batch_size
  steps = inner_steps(config, family)
  if config.baseline == "initial":  # curves as ratios to the learner at its initial theta
    learner = VersusBaseline(learner, run_keys(config.seed)[0])
  if e.name == "backprop":
    return estimators.full_backprop(learner, family, objective, batch, steps, e.remat, mesh)
  if e.name == "truncated_backprop":
    return estimators.truncated_backprop(learner, family, objective, batch, steps,
                                         e.truncation_length, e.remat, mesh)
  if e.name == "es":
    return estimators.antithetic_es(learner, family, objective, batch, steps, e.sigma, mesh)
  if e.name in ("truncated_es", "pes"):
    return estimators.truncated_es(learner, family, objective, batch, steps,
                                   e.truncation_length, e.sigma, e.name == "pes", e.stagger,
                                   mesh)
  return estimators.reptile(learner, family, objective, batch, steps, mesh)


def build(config: ml_collections.ConfigDict, family: TaskFamily | None = None) -> Experiment:
  """Builds the experiment a (validated) config describes, on the mesh ``config.mesh``;
  ``family`` replaces the task family the config names (e.g. one built in a notebook)."""
  mesh = parallel.make_mesh(config.mesh.data)
  parallel.check_divisible(config.meta_batch_size, mesh, "meta_batch_size")
  family = make_family(config) if family is None else family
  learner = make_learner(config, family)
  objective = objectives.get_objective(config.objective, **config.objective_options)
  c = config.curriculum
  steering = (make_steering(c.teacher, family, c.grid, **c.options.to_dict()) if c.teacher
              else None)
  return Experiment(family, learner, objective,
                    functools.partial(_estimator, config, learner, objective, mesh),
                    make_optimizer(config), mesh, steering)
