"""The experiment config schema and its validation.

:func:`default_config` lists every key an experiment may set, with its default and type.
:func:`validate` checks a config against it before anything is built or compiled: an unknown
key, a wrong type or a value outside what is allowed raises :class:`ConfigError` naming the key
and what it accepts.
"""

import difflib
import importlib.util
import inspect
import math
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn import models
from metalearn.datasets import loading
from metalearn.estimators import ESTIMATORS
from metalearn.learners import LEARNERS
from metalearn.objectives import OBJECTIVES

SCHEDULES = ("constant", "linear", "cosine")
# Keys that may change when a run resumes in the same workdir.
RESUMABLE_CHANGES = ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                     "steps_per_call", "eval", "mesh")


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
}
MODELS = {
    "mlp": dict(name="mlp", hidden=(40, 40), norm="none"),
    "conv4": dict(name="conv4", filters=64, num_layers=4, norm="batch", pool="max",
                  conv_impl="im2col"),
}


def default_config(task: str = "sinusoid", model: str = "mlp") -> ml_collections.ConfigDict:
  """Every config key with its default: MAML on 10-shot sinusoids at the paper's settings.

  ``task`` / ``model`` pick the key sets of the ``task`` and ``model`` groups (:data:`TASKS`,
  :data:`MODELS`); the ``pretrained`` evaluation baseline is only on for regression.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = dict(TASKS[task])
  c.model = dict(MODELS[model])
  c.learner = dict(name="maml", inner_lr=0.01, num_inner_steps=1)
  c.objective = "final"
  c.estimator = dict(name="backprop", remat=False, truncation_length=1)
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
  # process. May change on resume: results do not depend on it.
  c.mesh = dict(data=-1)
  c.eval = dict(at_end=True, seed=1, split="test", num_tasks=600, num_query=100,
                num_inner_steps=10, report_steps=(0, 1, 5, 10),
                baselines=(("random_init", "pretrained") if task == "sinusoid"
                           else ("random_init",)),
                pretrain_steps=10_000, pretrain_lr=1e-3,
                finetune_lrs=(0.001, 0.003, 0.01, 0.03, 0.1), num_tuning_tasks=200,
                num_plot_tasks=4, task_batch_size=100)
  return c


def load_config_module(path: str):
  """Imports a config file (``experiments/configs/NAME.py``) as a module."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  if spec is None:
    raise FileNotFoundError(f"no config file at {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


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
    "estimator.name": (_choices(ESTIMATORS), f"one of {list(ESTIMATORS)}"),
    "estimator.truncation_length": (_at_least(1), "an int >= 1"),
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
    "eval.num_tasks": (_at_least(2), "an int >= 2"),
    "eval.num_query": (_at_least(1), "an int >= 1"),
    "eval.split": (_choices(("train", "validation", "test")),
                   "one of ['train', 'validation', 'test'] (few_shot tasks)"),
    "eval.baselines": (lambda v: set(v) <= {"random_init", "pretrained"},
                       "a tuple of baselines from ('random_init', 'pretrained')"),
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
    if path == "optimizer.kwargs":
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
  for group, options in (("task", TASKS), ("model", MODELS)):
    sub = config.get(group)
    name = sub.get("name") if isinstance(sub, ml_collections.ConfigDict) else None
    if name not in options:
      raise ConfigError(f"config key '{group}.name' = {name!r} is not allowed: it must be one of "
                        f"{list(options)}")
  schema = default_config(config.task.name, config.model.name)
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
  reptile_learner = config.learner.name == "reptile"
  if reptile_learner != (config.estimator.name == "reptile"):
    raise ConfigError("learner.name='reptile' and estimator.name='reptile' go together (Reptile's "
                      f"meta-update is its estimator); got learner.name={config.learner.name!r}, "
                      f"estimator.name={config.estimator.name!r}")
  if (config.estimator.name == "truncated_backprop"
      and config.learner.num_inner_steps % config.estimator.truncation_length):
    raise ConfigError(f"learner.num_inner_steps ({config.learner.num_inner_steps}) must be a "
                      "multiple of estimator.truncation_length "
                      f"({config.estimator.truncation_length})")
  if max(config.eval.report_steps) > config.eval.num_inner_steps or min(
      config.eval.report_steps) < 0:
    raise ConfigError(f"config key 'eval.report_steps' = {tuple(config.eval.report_steps)} must "
                      f"lie in [0, eval.num_inner_steps={config.eval.num_inner_steps}]")
  return config


def _check_learner_task(config) -> None:
  """Cross-key rules of learners, tasks and evaluation."""
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
    elif isinstance(schema[key], ml_collections.ConfigDict) and key != "kwargs":
      yield from _missing(config[key], schema[key], prefix + key + ".")


def resume_conflicts(saved: dict, current: dict, prefix="") -> list[str]:
  """Keys whose values differ between a workdir's saved config and the current one.

  Keys in :data:`RESUMABLE_CHANGES` may differ (e.g. extending ``num_steps``), except
  ``num_steps`` under a decaying learning-rate schedule, whose length it sets.
  """
  out = []
  if (not prefix and saved.get("num_steps") != current.get("num_steps")
      and current.get("optimizer", {}).get("schedule", "constant") != "constant"):
    out.append(f"num_steps: {saved.get('num_steps')!r} in the workdir, "
               f"{current.get('num_steps')!r} now (it sets the length of the "
               f"{current['optimizer']['schedule']!r} learning-rate schedule)")
  for key in sorted(set(saved) | set(current)):
    path = prefix + key
    if path in RESUMABLE_CHANGES:
      continue
    a, b = saved.get(key), current.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += resume_conflicts(a, b, path + ".")
    elif a != b:
      out.append(f"{path}: {a!r} in the workdir, {b!r} now")
  return out
