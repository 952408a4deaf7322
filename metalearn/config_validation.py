"""Validation of experiment configs against the schema (:mod:`metalearn.config_schema`).

:func:`validate` checks a config before anything is built or compiled: an unknown key, a wrong
type, a value outside what is allowed or a combination of keys that cannot work raises
:class:`~metalearn.config_schema.ConfigError` naming the key and what it accepts.
"""

import difflib
import inspect
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn import models
from metalearn.config_schema import (ICL_BASELINES, ICL_OOD_SETS, ICL_TASKS, MODELS, OOD_SETS,
                                     SCHEDULES, STEERABLE_TASKS, TASKS, TEXTBOOK_TASKS,
                                     TRAINING_TASKS, ConfigError, default_config)
from metalearn.curriculum import TEACHERS
from metalearn.datasets import loading
from metalearn.estimators import ESTIMATORS
from metalearn.learners import GRADIENT_LEARNERS, LEARNERS, LOPTS
from metalearn.learners.sequential import SEQUENTIAL_LEARNERS
from metalearn.learners.mlp_lopt import FEATURE_SETS
from metalearn.learners.optimizer import CURVES
from metalearn.learners.in_context import LAYOUTS
from metalearn.tasks import in_context, training
from metalearn.objectives import OBJECTIVES

def _positive(x):
  return x > 0 and math.isfinite(x)


def _at_least(n):
  return lambda x: x >= n


def _choices(options):
  return lambda x: x in options


def _optax_name(name):
  fn = getattr(optax, name, None)
  if not callable(fn) or isinstance(fn, type):
    return False
  try:
    return "learning_rate" in inspect.signature(fn).parameters
  except (TypeError, ValueError):  # not a plain function: not an optimizer factory
    return False


# key -> (predicate, what is allowed). Keys not listed only need the right type.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda x: 0 <= x < 2**32, "an int in [0, 2**32)"),
    "task.name": (_choices(TASKS), f"one of {list(TASKS)}"),
    "task.num_ways": (_at_least(2), "an int >= 2"),
    "task.source": (_choices(loading.SOURCES), f"one of {list(loading.SOURCES)}"),
    "task.protocol": (_choices(loading.PROTOCOLS), f"one of {list(loading.PROTOCOLS)}"),
    "task.dataset": (bool, "a tfds dataset name ('omniglot', 'mnist', 'cifar10', ...)"),
    "task.tfds_splits": (lambda v: len(v) >= 1, "a non-empty tuple of tfds split names"),
    "task.image_size": (_at_least(4), "an int >= 4"),
    "task.num_train_classes": (_at_least(1), "an int >= 1"),
    "task.num_validation_classes": (_at_least(0), "an int >= 0"),
    "task.num_support": (_at_least(1), "an int >= 1"),
    "task.num_query": (_at_least(1), "an int >= 1"),
    "task.amplitude": (lambda r: len(r) == 2 and 0 <= r[0] <= r[1], "(low, high), 0 <= low <= high"),
    "task.phase": (lambda r: len(r) == 2 and r[0] <= r[1], "(low, high) with low <= high"),
    "task.x_range": (lambda r: len(r) == 2 and r[0] < r[1], "(low, high) with low < high"),
    "task.data": (_choices(training.DATA), f"one of {list(training.DATA)}"),
    "task.network": (_choices(training.NETWORKS), f"one of {list(training.NETWORKS)}"),
    "task.activation": (_choices(training.ACTIVATIONS), f"one of {list(training.ACTIVATIONS)}"),
    "task.num_classes": (_at_least(2), "an int >= 2"),
    "task.batch_size": (_at_least(1), "an int >= 1"),
    "task.init_scale": (_positive, "a scale > 0"),
    "task.separation": (lambda r: len(r) == 2 and 0 <= r[0] <= r[1], "(low, high), 0 <= low <= high"),
    "task.dim": (_at_least(1), "an int >= 1"),
    "task.log10_condition": (lambda r: len(r) == 2 and 0 <= r[0] <= r[1],
                             "(low, high), 0 <= low <= high"),
    "task.noise": (_at_least(0), "a noise scale >= 0"),
    "task.vocab_size": (_at_least(2), "an int >= 2"),
    "task.seq_len": (_at_least(1), "an int >= 1"),
    "task.width": (_at_least(1), "an int >= 1"),
    "task.num_heads": (_at_least(1), "an int >= 1"),
    "task.temperature": (_positive, "a temperature > 0"),
    "task.function_class": (_choices(in_context.FUNCTION_CLASSES),
                            f"one of {list(in_context.FUNCTION_CLASSES)}"),
    "task.num_points": (_at_least(2), "an int >= 2"),
    "task.noise_std": (_at_least(0), "a noise scale >= 0"),
    "task.x_dist": (_choices(in_context.X_DISTS), f"one of {list(in_context.X_DISTS)}"),
    "task.sparsity": (_at_least(1), "an int >= 1"),
    "task.pool_size": (_at_least(0), "an int >= 0"),
    "task.num_chapters": (_at_least(1), "an int >= 1"),
    "task.exercises_per_chapter": (_at_least(1), "an int >= 1"),
    "task.coef_std": (_positive, "a scale > 0"),
    "task.freq_range": (lambda r: len(r) == 2 and 0 < r[0] <= r[1], "(low, high), 0 < low <= high"),
    "task.basis_seed": (lambda x: 0 <= x < 2**32, "an int in [0, 2**32)"),
    "eval.num_books": (_at_least(2), "an int >= 2"),
    "task.curriculum": (lambda c: len(c) in (0, 5) and all(v >= 0 for v in c) and (
        not c or c[4] >= 1), "() or (dims_start, dims_step, points_start, points_step, "
                             "interval >= 1)"),
    "task.num_tasks": (_at_least(0), "an int >= 0 (0: a fresh task per prompt)"),
    "task.base": (bool, "'procedural' or a tfds image dataset name ('mnist', ...)"),
    "model.mlp_ratio": (_at_least(1), "an int >= 1"),
    "model.width": (_at_least(1), "an int >= 1"),
    "model.num_heads": (_at_least(1), "an int >= 1"),
    "model.init_scale": (_positive, "a scale > 0"),
    "model.name": (_choices(MODELS), f"one of {list(MODELS)}"),
    "model.hidden": (lambda h: all(w >= 1 for w in h), "a tuple of layer widths >= 1"),
    "model.norm": (_choices(models.NORMS), f"one of {list(models.NORMS)}"),
    "model.pool": (_choices(models.POOLS), f"one of {list(models.POOLS)}"),
    "model.conv_impl": (_choices(models.CONV_IMPLS), f"one of {list(models.CONV_IMPLS)}"),
    "model.filters": (_at_least(1), "an int >= 1"),
    "model.num_layers": (_at_least(1), "an int >= 1"),
    "learner.name": (_choices(LEARNERS), f"one of {sorted(LEARNERS)}"),
    "learner.inner_lr": (_positive, "a step size > 0"),
    "learner.num_inner_steps": (_at_least(0), "an int >= 0 (0 only for protonet)"),
    "objective": (_choices(OBJECTIVES), f"one of {sorted(OBJECTIVES)}"),
    "objective_options.reference_loss": (_at_least(0), "a loss >= 0"),
    "objective_options.discount": (lambda g: 0 < g <= 1, "a discount in (0, 1]"),
    "baseline": (_choices(("", "initial")), "'' (none) or 'initial'"),
    "curriculum.teacher": (_choices(("", *TEACHERS)), f"'' (none) or one of {list(TEACHERS)}"),
    "curriculum.grid": (_at_least(1), "an int >= 1"),
    "monitor.num_tasks": (_at_least(0), "an int >= 0 (0: off)"),
    "estimator.name": (_choices(ESTIMATORS), f"one of {list(ESTIMATORS)}"),
    "estimator.truncation_length": (_at_least(1), "an int >= 1"),
    "estimator.sigma": (_positive, "a perturbation scale > 0"),
    "learner.features": (_choices(FEATURE_SETS), f"one of {list(FEATURE_SETS)}"),
    "learner.curve": (_choices(CURVES), f"one of {list(CURVES)}"),
    "learner.reference_lr": (_positive, "a step size > 0"),
    "learner.step_mult": (_positive, "a multiplier > 0"),
    "learner.exp_mult": (_at_least(0), "a multiplier >= 0"),
    "learner.hidden_size": (_at_least(1), "an int >= 1"),
    "learner.output_scale": (_positive, "a scale > 0"),
    "learner.init_lr": (_positive, "a step size > 0"),
    "eval.lrs": (lambda v: len(v) >= 1 and all(x > 0 for x in v),
                 "a non-empty tuple of step sizes > 0"),
    "eval.report_lrs": (lambda v: all(x > 0 for x in v), "a tuple of step sizes > 0"),
    "eval.ood": (lambda v: set(v) <= set(OOD_SETS) | set(ICL_OOD_SETS),
                 f"a tuple from {OOD_SETS} (learned optimizers) or {ICL_OOD_SETS} (in-context "
                 "regression)"),
    "eval.gd_steps": (lambda v: all(s >= 1 for s in v), "a tuple of step counts >= 1"),
    "eval.report_points": (lambda v: len(v) >= 1 and all(s >= 0 for s in v),
                           "a non-empty tuple of numbers of in-context examples >= 0"),
    "learner.layout": (_choices(LAYOUTS), f"one of {list(LAYOUTS)}"),
    "eval.horizon_multiplier": (_at_least(1), "an int >= 1"),
    "eval.valid_batches": (_at_least(1), "an int >= 1"),
    "meta_batch_size": (_at_least(1), "an int >= 1"),
    "num_steps": (_at_least(1), "an int >= 1"),
    "optimizer.name": (_optax_name, "the name of an optax optimizer taking learning_rate "
                                    "(e.g. 'adam', 'sgd', 'adamw', 'lion')"),
    "optimizer.learning_rate": (_positive, "a learning rate > 0"),
    "optimizer.schedule": (_choices(SCHEDULES), f"one of {list(SCHEDULES)}"),
    "optimizer.clip_grad_norm": (_at_least(0), "a norm >= 0 (0 disables clipping)"),
    "steps_per_call": (_at_least(1), "an int >= 1"),
    "log_every": (_at_least(1), "an int >= 1"),
    "checkpoint_every": (_at_least(1), "an int >= 1"),
    "keep_checkpoints": (_at_least(1), "an int >= 1"),
    "max_consecutive_nonfinite": (_at_least(1), "an int >= 1"),
    "mesh.data": (lambda v: v == -1 or v >= 1, "a device count >= 1, or -1 for all devices"),
    "mesh.cpu_devices": (lambda v: v >= -1, "a CPU device count >= 1, 0 for JAX's default or -1 "
                                            "for one per core"),
    "eval.num_tasks": (_at_least(2), "an int >= 2"),
    "eval.num_query": (_at_least(1), "an int >= 1"),
    "eval.split": (_choices(("train", "validation", "test")),
                   "one of ['train', 'validation', 'test'] (few_shot tasks)"),
    "eval.baselines": (lambda v: set(v) <= {"random_init", "pretrained", "adam", "sgd_momentum",
                                            *ICL_BASELINES},
                       "a tuple of baselines from ('random_init', 'pretrained') (few-shot "
                       "learners), ('adam', 'sgd_momentum') (learned optimizers) or "
                       f"{ICL_BASELINES} (in-context learners)"),
    "eval.num_inner_steps": (_at_least(0), "an int >= 0"),
    "eval.pretrain_steps": (_at_least(0), "an int >= 0"),
    "eval.pretrain_lr": (_positive, "a learning rate > 0"),
    "eval.finetune_lrs": (lambda v: len(v) >= 1 and all(x > 0 for x in v),
                          "a non-empty tuple of step sizes > 0"),
    "eval.num_tuning_tasks": (_at_least(1), "an int >= 1"),
    "eval.num_plot_tasks": (_at_least(0), "an int >= 0"),
    "eval.task_batch_size": (_at_least(1), "an int >= 1 (tasks evaluated at once)"),
    "eval.report_steps": (lambda v: len(v) >= 1, "a non-empty tuple of inner-step counts"),
}


def _type_ok(value, default) -> bool:
  if isinstance(default, bool):
    return isinstance(value, bool)
  if isinstance(default, float):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if isinstance(default, int):
    return isinstance(value, int) and not isinstance(value, bool)
  if isinstance(default, (tuple, list)):
    return isinstance(value, (tuple, list)) and all(
        _type_ok(v, default[0]) for v in value) if default else isinstance(value, (tuple, list))
  return isinstance(value, type(default))


def _walk(config, schema, prefix=""):
  for key in config.keys():
    path = prefix + key
    if key not in schema:
      allowed = sorted(schema.keys())
      close = difflib.get_close_matches(key, allowed, n=1)
      hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
      raise ConfigError(f"unknown config key '{path}'.{hint} Keys allowed "
                        f"{'under ' + repr(prefix[:-1]) if prefix else 'at the top level'}: "
                        f"{', '.join(allowed)}")
    value, default = config[key], schema[key]
    if path in ("optimizer.kwargs", "curriculum.options"):
      continue
    if isinstance(default, ml_collections.ConfigDict):
      if not isinstance(value, ml_collections.ConfigDict):
        raise ConfigError(f"config key '{path}' must be a group of keys, got {value!r}")
      _walk(value, default, path + ".")
      continue
    if not _type_ok(value, default):
      raise ConfigError(f"config key '{path}' must be of type {type(default).__name__} "
                        f"(like {default!r}), got {type(value).__name__} {value!r}")
    if path in _RULES and not _RULES[path][0](value):
      raise ConfigError(f"config key '{path}' = {value!r} is not allowed: it must be "
                        f"{_RULES[path][1]}")


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every key, type and value of ``config``; returns it or raises :class:`ConfigError`."""
  for group, options in (("task", TASKS), ("model", MODELS), ("learner", sorted(LEARNERS))):
    sub = config.get(group)
    name = sub.get("name") if isinstance(sub, ml_collections.ConfigDict) else None
    if name not in options:
      raise ConfigError(f"config key '{group}.name' = {name!r} is not allowed: it must be one of "
                        f"{list(options)}")
  schema = default_config(config.task.name, config.model.name, config.learner.name)
  _walk(config, schema)
  for key in _missing(config, schema):
    raise ConfigError(f"config key '{key}' is missing; start configs from "
                      "metalearn.config.default_config()")
  opt = config.optimizer
  params = inspect.signature(getattr(optax, opt.name)).parameters
  for k in opt.kwargs.keys():
    if k not in params or k == "learning_rate":
      raise ConfigError(f"config key 'optimizer.kwargs.{k}' is not an argument of "
                        f"optax.{opt.name}; it takes: "
                        f"{', '.join(p for p in params if p != 'learning_rate')}")
  _check_optimizer_builds(opt)
  for key in ("log_every", "checkpoint_every"):
    if config[key] % config.steps_per_call:
      raise ConfigError(f"config key '{key}' = {config[key]} must be a multiple of "
                        f"steps_per_call ({config.steps_per_call}): training runs in compiled "
                        "chunks of steps_per_call outer steps")
  _check_learner_task(config)
  _check_progress_and_curriculum(config)
  if config.learner.name == "in_context" or config.task.name in TEXTBOOK_TASKS:
    return config
  reptile_learner = config.learner.name == "reptile"
  if reptile_learner != (config.estimator.name == "reptile"):
    raise ConfigError("learner.name='reptile' and estimator.name='reptile' go together (Reptile's "
                      f"meta-update is its estimator); got learner.name={config.learner.name!r}, "
                      f"estimator.name={config.estimator.name!r}")
  if (config.estimator.name in ("truncated_backprop", "truncated_es", "pes")
      and config.learner.num_inner_steps % config.estimator.truncation_length):
    raise ConfigError(f"learner.num_inner_steps ({config.learner.num_inner_steps}) must be a "
                      "multiple of estimator.truncation_length "
                      f"({config.estimator.truncation_length})")
  if config.learner.name not in LOPTS and (max(config.eval.report_steps) >
                                           config.eval.num_inner_steps or min(
      config.eval.report_steps) < 0):
    raise ConfigError(f"config key 'eval.report_steps' = {tuple(config.eval.report_steps)} must "
                      f"lie in [0, eval.num_inner_steps={config.eval.num_inner_steps}]")
  return config


def _check_learner_task(config) -> None:
  """Cross-key rules of learners, tasks and evaluation."""
  if config.task.name in TEXTBOOK_TASKS or config.learner.name in SEQUENTIAL_LEARNERS:
    _check_textbook(config)
    return
  icl, icl_task = config.learner.name == "in_context", config.task.name in ICL_TASKS
  if icl != icl_task:
    raise ConfigError(f"learner.name={config.learner.name!r} and task.name={config.task.name!r} do "
                      f"not go together: in-context learners read prompts of {list(ICL_TASKS)}")
  if icl:
    _check_in_context(config)
    return
  lopt, training_task = config.learner.name in LOPTS, config.task.name in TRAINING_TASKS
  if lopt != training_task:
    raise ConfigError(
        f"learner.name={config.learner.name!r} and task.name={config.task.name!r} do not go "
        f"together: learned optimizers ({sorted(LOPTS)}) train networks of training tasks "
        f"({list(TRAINING_TASKS)}); few-shot learners need few-shot tasks")
  if lopt:
    if config.model.name != "none":
      raise ConfigError("learned optimizers train the task's own network: set model.name='none' "
                        "(the task keys set the network)")
    if config.task.name == "lm_training" and config.task.width % config.task.num_heads:
      raise ConfigError(f"task.width ({config.task.width}) must be a multiple of "
                        f"task.num_heads ({config.task.num_heads})")
    return
  if config.model.name == "none":
    raise ConfigError(f"learner.name={config.learner.name!r} needs a model: set model.name to "
                      f"one of {[m for m in MODELS if m != 'none']}")
  protonet, few_shot = config.learner.name == "protonet", config.task.name == "few_shot"
  if protonet and not few_shot:
    raise ConfigError("learner.name='protonet' needs task.name='few_shot' (it classifies by "
                      f"distance to class prototypes); got task.name={config.task.name!r}")
  if protonet and (config.learner.num_inner_steps or config.eval.num_inner_steps):
    raise ConfigError("learner.name='protonet' has no inner steps: set "
                      "learner.num_inner_steps=0 and eval.num_inner_steps=0")
  if not protonet and config.learner.num_inner_steps < 1:
    raise ConfigError(f"learner.num_inner_steps must be >= 1 for {config.learner.name!r}")
  if few_shot and "pretrained" in config.eval.baselines:
    raise ConfigError("eval.baselines: 'pretrained' (training one network on the pooled "
                      "regression problem) is for regression tasks; few_shot tasks use "
                      "('random_init',) or ()")
  if few_shot and config.model.name == "mlp" and not config.model.hidden:
    raise ConfigError("model.hidden must list at least one layer width for few_shot tasks")


def _check_progress_and_curriculum(config) -> None:
  """Cross-key rules of baselines, objectives and teachers."""
  if config.baseline and config.estimator.name == "reptile":
    raise ConfigError("baseline='initial' needs a learning curve to divide; Reptile's estimator "
                      "has no meta-objective: set baseline=''")
  if config.objective == "progress" and config.objective_options.reference_loss > 0 and (
      config.baseline):
    raise ConfigError("objective_options.reference_loss is a loss; with baseline='initial' the "
                      "curve is a ratio to the baseline: set reference_loss=0")
  if config.curriculum.teacher:
    if config.estimator.name in ("truncated_backprop", "truncated_es", "pes"):
      raise ConfigError(f"curriculum.teacher with estimator.name={config.estimator.name!r}: a "
                        "truncated estimator keeps tasks across outer steps, so a step's score "
                        "would belong to tasks an earlier proposal drew; use estimator.name="
                        "'backprop' or 'es' with a teacher")
    if config.task.name not in STEERABLE_TASKS:
      raise ConfigError(f"curriculum.teacher={config.curriculum.teacher!r} needs a task family a "
                        f"teacher can steer, one of {list(STEERABLE_TASKS)}; got "
                        f"task.name={config.task.name!r}")
    if config.task.name in TEXTBOOK_TASKS and config.learner.name not in SEQUENTIAL_LEARNERS:
      raise ConfigError(f"curriculum.teacher on {config.task.name} picks how many chapters a book "
                        f"has, for learners that read books ({list(SEQUENTIAL_LEARNERS)}); "
                        f"learner.name={config.learner.name!r} trains on single chapters")
    t = config.task
    if t.name == "classification_training" and (t.network != "mlp" or not t.hidden or len(
        set(t.hidden)) != 1):
      raise ConfigError(f"curriculum.teacher on classification_training steers the width and "
                        f"depth of an MLP with equal hidden widths; got task.network="
                        f"{t.network!r}, task.hidden={tuple(t.hidden)} (e.g. task.network='mlp', "
                        "task.hidden=(64, 64))")
    if config.task.get("curriculum"):
      raise ConfigError("curriculum.teacher and task.curriculum (a fixed schedule) both set the "
                        "task's difficulty: set one of them (task.curriculum=() for a teacher)")


def _check_textbook(config) -> None:
  """Cross-key rules of textbook tasks and the learners that read them."""
  t, name, e = config.task, config.learner.name, config.estimator
  if t.name not in TEXTBOOK_TASKS:
    raise ConfigError(f"learner.name={name!r} reads whole books: set task.name to one of "
                      f"{list(TEXTBOOK_TASKS)}")
  sequential = name in SEQUENTIAL_LEARNERS
  if not sequential and name not in GRADIENT_LEARNERS:
    raise ConfigError(f"task.name={t.name!r} is read in order by the learners "
                      f"{list(SEQUENTIAL_LEARNERS)}, or meta-trained on single chapters by "
                      f"{sorted(GRADIENT_LEARNERS)}; got learner.name={name!r}")
  if config.model.name not in ("mlp", "conv4") or (
      t.name == "textbook_regression" and config.model.name != "mlp"):
    raise ConfigError(f"task.name={t.name!r} needs model.name='mlp'"
                      + (" or 'conv4'" if t.name == "textbook_omniglot" else "")
                      + f", got {config.model.name!r}")
  if config.model.norm == "batch":
    raise ConfigError("model.norm='batch' normalises every exercise by its own statistics "
                      "(textbook_omniglot reads one class at a time): set model.norm to "
                      "'layer' or 'none'")
  if t.name == "textbook_omniglot":
    if (t.num_ways * t.num_support) % t.batch_size:
      raise ConfigError(f"task.batch_size ({t.batch_size}) must divide task.num_ways * "
                        f"task.num_support ({t.num_ways} * {t.num_support}): a chapter's "
                        "support images are read in whole exercises")
    if config.eval.split == "validation":
      raise ConfigError("textbook_omniglot splits alphabets into 'train' (background) and "
                        "'test' (held out): set eval.split to one of them")
  if (name == "reptile") != (e.name == "reptile"):
    raise ConfigError("learner.name='reptile' and estimator.name='reptile' go together; got "
                      f"learner.name={name!r}, estimator.name={e.name!r}")
  if sequential:
    per_chapter = (t.exercises_per_chapter if t.name == "textbook_regression"
                   else t.num_ways * t.num_support // t.batch_size)
    steps, what = t.num_chapters * per_chapter, "a book's exercises (num_chapters * exercises)"
  else:
    steps, what = config.learner.num_inner_steps, "learner.num_inner_steps"
    if steps < 1:
      raise ConfigError(f"learner.num_inner_steps must be >= 1 for {name!r}")
  if e.name in ("truncated_backprop", "truncated_es", "pes") and steps % e.truncation_length:
    raise ConfigError(f"{what} = {steps} must be a multiple of estimator.truncation_length "
                      f"({e.truncation_length})")


def _check_in_context(config) -> None:
  """Cross-key rules of in-context learners."""
  t, m, layout = config.task, config.model, config.learner.layout
  if m.name not in ("transformer", "lstm", "lsa"):
    raise ConfigError(f"learner.name='in_context' needs a sequence model: set model.name to "
                      f"'transformer', 'lstm' or 'lsa', got {m.name!r}")
  if (m.name == "lsa") != (layout == "prefix"):
    raise ConfigError("model.name='lsa' (linear self-attention) and learner.layout='prefix' go "
                      f"together; got model.name={m.name!r}, learner.layout={layout!r}")
  if m.name == "transformer" and m.width % m.num_heads:
    raise ConfigError(f"model.width ({m.width}) must be a multiple of model.num_heads "
                      f"({m.num_heads})")
  if config.estimator.name not in ("backprop", "es"):
    raise ConfigError(f"estimator.name={config.estimator.name!r} does not apply to in-context "
                      "learners (their curve is one forward pass): use 'backprop' (or 'es')")
  regression = t.name == "icl_regression"
  allowed = ({"least_squares", "ridge", "averaging", "knn_3", "lasso", "gd", "bayes"}
             if regression else {"logistic_regression"})
  if not set(config.eval.baselines) <= allowed:
    raise ConfigError(f"eval.baselines {tuple(config.eval.baselines)}: {t.name} prompts take "
                      f"baselines from {sorted(allowed)}")
  if regression:
    if "bayes" in config.eval.baselines and t.function_class != "linear_pool":
      raise ConfigError("eval.baselines 'bayes' (the discrete-prior Bayes estimator) needs "
                        "task.function_class='linear_pool'")
    if t.function_class == "linear_pool" and t.pool_size < 1:
      raise ConfigError("task.function_class='linear_pool' needs task.pool_size >= 1")
    if t.curriculum and (t.curriculum[0] > t.dim or t.curriculum[2] > t.num_points):
      raise ConfigError(f"task.curriculum {tuple(t.curriculum)} starts above task.dim ({t.dim}) "
                        f"or task.num_points ({t.num_points})")
    if t.curriculum and config.objective == "final":
      raise ConfigError("objective='final' scores only the last position, which a curriculum "
                        "masks until it reaches task.num_points: use 'mean_all' or 'mean' with "
                        "task.curriculum")
  else:
    if config.eval.ood:
      raise ConfigError("eval.ood prompt sets are for icl_regression; set eval.ood=()")
    if t.base == "procedural" and t.pool_size < 1:
      raise ConfigError("task.pool_size must be >= 1: the procedural base data of "
                        "icl_classification are a pool of that many examples")
  if max(config.eval.report_points) >= t.num_points:
    raise ConfigError(f"eval.report_points {tuple(config.eval.report_points)} must be below "
                      f"task.num_points ({t.num_points})")


def _check_optimizer_builds(opt) -> None:
  """Builds ``optax.<name>(learning_rate, **kwargs)`` and traces one update on a dummy tree."""
  try:
    tx = getattr(optax, opt.name)(learning_rate=opt.learning_rate, **opt.kwargs.to_dict())
    params = {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}
    jax.eval_shape(lambda p: tx.update(p, tx.init(p), p), params)
  except Exception as e:  # any failure here is a config error; the cause is kept and shown
    raise ConfigError(f"config keys 'optimizer.name' = {opt.name!r} / 'optimizer.kwargs' = "
                      f"{opt.kwargs.to_dict()!r} do not give a usable optax optimizer: "
                      f"{type(e).__name__}: {e}") from e


def _missing(config, schema, prefix=""):
  for key in schema.keys():
    if key not in config:
      yield prefix + key
    elif isinstance(schema[key], ml_collections.ConfigDict) and key not in ("kwargs", "options"):
      yield from _missing(config[key], schema[key], prefix + key + ".")
