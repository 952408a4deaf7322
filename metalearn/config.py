"""Experiment configs: the engine's own options, completion from the registries, validation.

A config names one component per group and sets the options it wants; everything else comes
from the components' declarations (:mod:`metalearn.registry`)::

  c = ml_collections.ConfigDict()
  c.task = dict(name="sinusoid", num_support=5)
  c.learner = dict(name="metasgd", inner_lr=0.03)
  c.objective = dict(name="progress")
  c.num_steps = 20_000

:func:`validate` returns the *complete* config: every group's component looked up by name
(an unknown name lists the registered ones), every option it leaves out set to its default,
every key, type and value checked (an unknown key with a did-you-mean), then the components'
compatibility, declared as capabilities (:func:`check_compatible`), then each component's own
rules, then the engine's. Any problem raises :class:`ConfigError`, one line naming the key and
what it accepts, before anything is built or compiled.

Groups and the registries they pick from: ``task`` (:data:`metalearn.tasks.TASKS`), ``model``
(:data:`metalearn.models.MODELS`), ``learner`` (:data:`metalearn.learners.LEARNERS`),
``estimator`` (:data:`metalearn.estimators.ESTIMATORS`), ``objective``
(:data:`metalearn.objectives.OBJECTIVES`), ``curriculum`` (:data:`metalearn.curriculum.TEACHERS`;
``name=''``: no teacher) and ``eval`` (:data:`metalearn.evaluators.EVALUATORS`; by default the
task's evaluator). The engine's keys (:data:`ENGINE`, :data:`ENGINE_GROUPS`) are declared here.
A group a config leaves out gets its default component: the learner's model kind picks
``mlp``, ``transformer`` or ``none``; an estimator providing what the learner needs
(``backprop`` unless it needs more); ``final``; no teacher; the task's evaluator.
"""

import dataclasses
import importlib.util
import inspect
import json
import pathlib

import ml_collections

from metalearn.registry import ConfigError, Option, check_value, complete, unknown_key_message

__all__ = ["ConfigError", "ENGINE", "ENGINE_GROUPS", "GROUPS", "RESUMABLE_CHANGES",
           "check_compatible", "default_config", "describe", "load_config_module",
           "resume_conflicts", "validate"]

SCHEDULES = ("constant", "linear", "cosine")

ENGINE = dict(
    seed=Option(0, ge=0, lt=2**32, doc="seed of the run (initialisation, tasks, estimator)"),
    meta_batch_size=Option(25, ge=1, doc="tasks per outer step"),
    num_steps=Option(70_000, ge=1, doc="outer steps"),
    steps_per_call=Option(500, ge=1, doc="outer steps per compiled chunk"),
    log_every=Option(1000, ge=1, doc="outer steps between metrics (a multiple of "
                     "steps_per_call)"),
    checkpoint_every=Option(10_000, ge=1, doc="outer steps between checkpoints (a multiple of "
                            "steps_per_call)"),
    keep_checkpoints=Option(3, ge=1, doc="checkpoints kept"),
    max_consecutive_nonfinite=Option(20, ge=1, doc="non-finite meta-gradients in a row (each "
                                     "skipped and counted) before the run stops"),
    baseline=Option("", choices=("", "initial"), doc="'initial': curves as ratios to the "
                    "learner at its initial meta-parameters (metalearn/learners/baselined.py)"),
)


def _optax_name(name) -> bool:
  import optax  # pylint: disable=g-import-not-at-top
  fn = getattr(optax, name, None) if isinstance(name, str) else None
  if not callable(fn) or isinstance(fn, type):
    return False
  try:
    return "learning_rate" in inspect.signature(fn).parameters
  except (TypeError, ValueError):  # a callable without a signature is no optimizer factory
    return False


ENGINE_GROUPS = dict(
    optimizer=dict(
        name=Option("adam", check=_optax_name, accepts="the name of an optax optimizer taking "
                    "learning_rate (e.g. 'adam', 'sgd', 'adamw', 'lion')"),
        learning_rate=Option(1e-3, gt=0, doc="the outer learning rate"),
        schedule=Option("constant", choices=SCHEDULES, doc="its schedule over num_steps"),
        clip_grad_norm=Option(0.0, ge=0, doc="clip meta-gradients to this global norm (0: off)"),
        kwargs=Option({}, free=True, doc="other arguments of optax.<name>")),
    # Devices the meta-batch is split over (metalearn/parallel.py); -1: every device of every
    # process. cpu_devices: split the host's CPU into that many devices at start (-1: one per
    # core; 0: JAX's default), so a CPU run's mesh spans every core.
    mesh=dict(
        data=Option(-1, check=lambda v: isinstance(v, int) and (v == -1 or v >= 1),
                    accepts="a device count >= 1, or -1 for all devices"),
        cpu_devices=Option(0, ge=-1, doc="CPU devices to split the host into (-1: one per core; "
                           "0: JAX's default)")),
    monitor=dict(
        num_tasks=Option(0, ge=0, doc="fixed tasks of the full family measured at every log "
                         "(0: off)"),
        seed=Option(2, ge=0, lt=2**32, doc="their seed")),
    # How XLA compiles (metalearn/parallel.py:use_compile_options). optimize=False turns XLA's
    # expensive backend optimisations off (jax_disable_most_optimizations): programs compile
    # 2-3x faster on a CPU and run slower, which suits smoke runs (every config's tiny size);
    # True leaves JAX's own setting.
    compile=dict(
        optimize=Option(True, doc="compile with XLA's full optimisation (False: fast "
                        "compilation, slower steps)")),
)

GROUPS = ("task", "model", "learner", "estimator", "objective", "curriculum", "eval")
# Keys that may change when a run resumes in the same workdir.
RESUMABLE_CHANGES = ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                     "steps_per_call", "eval", "mesh", "monitor", "compile")


def _registries():
  from metalearn.curriculum.base import TEACHERS  # pylint: disable=g-import-not-at-top
  from metalearn.estimators.base import ESTIMATORS  # pylint: disable=g-import-not-at-top
  from metalearn.evaluators.base import EVALUATORS  # pylint: disable=g-import-not-at-top
  from metalearn.learners.base import LEARNERS  # pylint: disable=g-import-not-at-top
  from metalearn.models.base import MODELS  # pylint: disable=g-import-not-at-top
  from metalearn.objectives.base import OBJECTIVES  # pylint: disable=g-import-not-at-top
  from metalearn.tasks.base import TASKS  # pylint: disable=g-import-not-at-top
  return dict(task=TASKS, model=MODELS, learner=LEARNERS, estimator=ESTIMATORS,
              objective=OBJECTIVES, curriculum=TEACHERS, eval=EVALUATORS)


_DEFAULT_MODEL = {"network": "mlp", "sequence": "transformer", "lm": "decoder_lm", None: "none"}


def _group_name(config, group: str, default: str) -> str:
  sub = config.get(group)
  if sub is None:
    return default
  if isinstance(sub, str):  # shorthand: c.objective = "progress"
    return sub
  if not isinstance(sub, (ml_collections.ConfigDict, dict)):
    raise ConfigError(f"config key '{group}' must be a group with a 'name' (e.g. "
                      f"{group}=dict(name=...)), got {sub!r}")
  name = sub.get("name", default)
  if not isinstance(name, str):
    raise ConfigError(f"config key '{group}.name' must be a string, got {name!r}")
  return name


def _group(config, group):
  sub = config.get(group)
  if sub is None or isinstance(sub, str):
    return ml_collections.ConfigDict()
  return ml_collections.ConfigDict(dict(sub)) if isinstance(sub, dict) else sub


def specs_of(config: ml_collections.ConfigDict) -> dict:
  """``group -> spec`` of a config's components (the defaults for groups it leaves out;
  ``curriculum``: ``None`` without a teacher)."""
  reg = _registries()
  out = {"task": reg["task"].get(_group_name(config, "task", "sinusoid"), "task.name")}
  out["learner"] = reg["learner"].get(_group_name(config, "learner", "maml"), "learner.name")
  out["model"] = reg["model"].get(
      _group_name(config, "model", _DEFAULT_MODEL[out["learner"].model]), "model.name")
  needs = out["learner"].needs
  default_estimator = "backprop"
  if needs:
    providers = [s.name for s in reg["estimator"].specs() if needs <= s.provides]
    default_estimator = providers[0] if providers else "backprop"
  out["estimator"] = reg["estimator"].get(_group_name(config, "estimator", default_estimator),
                                          "estimator.name")
  out["objective"] = reg["objective"].get(_group_name(config, "objective", "final"),
                                          "objective.name")
  teacher = _group_name(config, "curriculum", "")
  out["curriculum"] = reg["curriculum"].get(teacher, "curriculum.name") if teacher else None
  out["eval"] = reg["eval"].get(_group_name(config, "eval", out["task"].evaluator), "eval.name")
  return out


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The complete, checked config (see the module docstring); raises :class:`ConfigError`."""
  if isinstance(config, dict):
    config = ml_collections.ConfigDict(config)
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"a config is an ml_collections.ConfigDict, got {type(config).__name__}")
  allowed = set(ENGINE) | set(ENGINE_GROUPS) | set(GROUPS)
  for key in config.keys():
    if key not in allowed:
      raise ConfigError(unknown_key_message(key, key, allowed, "an experiment config"))
  specs = specs_of(config)
  out = ml_collections.ConfigDict()
  for key, option in ENGINE.items():
    out[key] = check_value(key, config[key] if key in config else option.default, option)
  for group, options in ENGINE_GROUPS.items():
    sub = config.get(group)
    if sub is not None and not isinstance(sub, (ml_collections.ConfigDict, dict)):
      raise ConfigError(f"config key '{group}' must be a group of keys, got {sub!r}")
    out[group] = complete(_group(config, group) if sub is not None else None, options, group,
                          f"'{group}'")
  for group in GROUPS:
    spec = specs[group]
    if spec is None:  # no teacher
      sub = _group(config, group)
      extra = [k for k in sub.keys() if k != "name"]
      if extra:
        raise ConfigError(f"config key '{group}.{extra[0]}' is set but curriculum.name is '' "
                          "(no teacher): name a teacher or drop the key")
      out[group] = ml_collections.ConfigDict({"name": ""})
      continue
    options = spec.options
    if group == "eval":  # the task's and the learner's defaults for their evaluator
      given = {**specs["task"].eval_defaults, **specs["learner"].eval_defaults}
      options = {k: dataclasses.replace(o, default=given[k]) if k in given else o
                 for k, o in options.items()}
    done = complete(_group(config, group), options, group,
                    f"{_registries()[group].kind} {spec.name!r}")
    out[group] = ml_collections.ConfigDict({"name": spec.name, **done.to_dict()})
  check_compatible(out, specs)
  for group in GROUPS:
    if specs[group] is not None and specs[group].check is not None:
      specs[group].check(out)
  _check_engine(out, specs)
  return out


def check_compatible(config: ml_collections.ConfigDict, specs: dict) -> None:
  """The components' declared capabilities agree (see each base module's spec)."""
  task, model, learner = specs["task"], specs["model"], specs["learner"]
  estimator, teacher, evaluator = specs["estimator"], specs["curriculum"], specs["eval"]
  names = lambda *groups: ", ".join(f"{g}.name={config[g].name!r}" for g in groups)
  reg = _registries()
  fits = lambda t, l: used_kind(t, l) is not None and (l.targets is None
                                                         or t.target in l.targets)
  fitting = lambda: (f"; tasks for learner {learner.name!r}: "
                     f"{[t.name for t in reg['task'].specs() if fits(t, learner)]}, learners for "
                     f"task {task.name!r}: "
                     f"{[l.name for l in reg['learner'].specs() if fits(task, l)]}")
  kind = used_kind(task, learner)
  if kind is None:
    raise ConfigError(f"{names('learner', 'task')} do not go together: the learner learns on "
                      f"{_list(learner.families)} families, the task is taken as "
                      f"{_list(task.kinds)}{fitting()}")
  if learner.targets is not None and task.target not in learner.targets:
    raise ConfigError(f"{names('learner', 'task')} do not go together: the learner handles "
                      f"{_list(learner.targets)} targets, the task's are {task.target!r}"
                      f"{fitting()}")
  if learner.model is None:
    if model.kind != "none":
      raise ConfigError(f"{names('learner')} trains the task's own network: set "
                        "model.name='none' (the task's keys set the network)")
  else:
    if model.kind != learner.model:
      from metalearn.models.base import MODELS  # pylint: disable=g-import-not-at-top
      fit = [s.name for s in MODELS.specs() if s.kind == learner.model]
      raise ConfigError(f"{names('learner', 'model')} do not go together: the learner needs a "
                        f"{learner.model} model, one of {fit}")
    if learner.model == "network" and task.inputs not in model.inputs:
      raise ConfigError(f"{names('model', 'task')} do not go together: the model reads "
                        f"{_list(model.inputs)} inputs, the task's are {task.inputs!r}")
  missing = estimator.needs - learner.provides
  if missing:
    fit = [e.name for e in reg["estimator"].specs()
           if e.needs <= learner.provides and e.provides <= learner.needs
           and learner.needs <= e.provides]
    raise ConfigError(f"{names('estimator', 'learner')} do not go together: the estimator "
                      f"needs a learner that is {_list(sorted(missing))}; this one provides "
                      f"{' and '.join(map(repr, sorted(learner.provides))) or 'nothing'} (estimators for it: "
                      f"{fit})")
  missing = learner.needs - estimator.provides
  if missing:
    raise ConfigError(f"{names('learner', 'estimator')} do not go together: the learner's "
                      f"meta-update needs an estimator providing {_list(sorted(missing))} "
                      f"(e.g. estimator.name={_providers(missing)!r})")
  if estimator.provides and not estimator.provides <= learner.needs:
    raise ConfigError(f"{names('estimator', 'learner')} do not go together: the estimator's "
                      f"update is {_list(sorted(estimator.provides))}, which the learner does not "
                      "take (a gradient estimator fits it)")
  if teacher is not None:
    space = task.steerable.get(kind)
    if space is None:
      other = [l.name for l in reg["learner"].specs()
               if fits(task, l) and used_kind(task, l) in task.steerable]
      hint = (f" or a learner taking it as {_list(task.steerable)} ({', '.join(other)})"
              if other else "")
      raise ConfigError(f"curriculum.name={teacher.name!r} needs a task a teacher can steer "
                        f"(one declaring a task space), and task {task.name!r} taken as "
                        f"{kind!r} has none: set curriculum.name='', a steerable task{hint}")
    if space not in teacher.spaces and not (space == "box" and teacher.arms):
      raise ConfigError(f"curriculum.name={teacher.name!r} proposes tasks in a "
                        f"{_list(teacher.spaces)} space; task {task.name!r} has a {space!r} one")
    if estimator.truncated:
      raise ConfigError(f"curriculum.name={teacher.name!r} with estimator.name="
                        f"{estimator.name!r}: a truncated estimator keeps tasks across outer "
                        "steps, so a step's score would belong to tasks an earlier proposal "
                        "drew; use a non-truncated estimator (e.g. 'backprop' or 'es')")
  if not set(evaluator.families) & set(task.kinds):
    raise ConfigError(f"eval.name={evaluator.name!r} evaluates {_list(evaluator.families)} "
                      f"families; task {task.name!r} is {_list(task.kinds)} (its evaluator is "
                      f"{task.evaluator!r})")
  missing = evaluator.needs - learner.provides
  if missing:
    raise ConfigError(f"eval.name={evaluator.name!r} needs a learner that is "
                      f"{_list(sorted(missing))}; learner {learner.name!r} is not")


def used_kind(task_spec, learner_spec) -> str | None:
  """The kind a task is taken as for a learner: the first of the learner's families the task
  offers (``None``: none)."""
  for kind in learner_spec.families:
    if kind in task_spec.kinds:
      return kind
  return None


def _providers(capabilities) -> str:
  from metalearn.estimators.base import ESTIMATORS  # pylint: disable=g-import-not-at-top
  fit = [s.name for s in ESTIMATORS.specs() if set(capabilities) <= s.provides]
  return fit[0] if fit else "?"


def _list(items) -> str:
  items = list(items)
  return " or ".join(repr(i) for i in items) if items else "no"


def _check_engine(config: ml_collections.ConfigDict, specs: dict) -> None:
  for key in ("log_every", "checkpoint_every"):
    if config[key] % config.steps_per_call:
      raise ConfigError(f"config key '{key}' = {config[key]} must be a multiple of "
                        f"steps_per_call ({config.steps_per_call}): training runs in compiled "
                        "chunks of steps_per_call outer steps")
  if config.baseline and not specs["estimator"].uses_objective:
    raise ConfigError(f"baseline='initial' divides the learning curve the meta-objective "
                      f"scores; estimator.name={config.estimator.name!r} does not use one: set "
                      "baseline=''")
  _check_optimizer_builds(config.optimizer)


def _check_optimizer_builds(opt) -> None:
  """Builds ``optax.<name>(learning_rate, **kwargs)`` and traces one update on a dummy tree."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  fn = getattr(optax, opt.name)
  params = inspect.signature(fn).parameters
  for k in opt.kwargs.keys():
    if k not in params or k == "learning_rate":
      raise ConfigError(f"config key 'optimizer.kwargs.{k}' is not an argument of "
                        f"optax.{opt.name}; it takes: "
                        f"{', '.join(p for p in params if p != 'learning_rate')}")
  try:
    tx = fn(learning_rate=opt.learning_rate, **opt.kwargs.to_dict())
    tree = {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}
    jax.eval_shape(lambda p: tx.update(p, tx.init(p), p), tree)
  except (TypeError, ValueError) as e:  # the cause is kept and shown
    raise ConfigError(f"config keys 'optimizer.name' = {opt.name!r} / 'optimizer.kwargs' = "
                      f"{opt.kwargs.to_dict()!r} do not give a usable optax optimizer: "
                      f"{type(e).__name__}: {e}") from e


def default_config(task: str = "sinusoid", model: str | None = None, learner: str = "maml",
                   **groups) -> ml_collections.ConfigDict:
  """The complete config of ``learner`` on ``task`` (``model``: by default the learner's model
  kind's first model), every other key at its default; ``groups`` set other groups' names
  (``estimator="pes"``, ``objective="progress"``, ``curriculum="exp3s"``, ``eval=...``)."""
  c = ml_collections.ConfigDict()
  c.task = dict(name=task)
  c.learner = dict(name=learner)
  if model is not None:
    c.model = dict(name=model)
  for group, name in groups.items():
    if group not in GROUPS:
      raise ConfigError(unknown_key_message(group, group, GROUPS, "default_config"))
    c[group] = dict(name=name)
  return validate(c)


def describe(group: str, name: str) -> str:
  """The options of component ``name`` of ``group``, one line each (what ``--help`` would
  say): ``key = default: doc (accepts)``."""
  if group in ENGINE_GROUPS:
    options, doc = ENGINE_GROUPS[group], group
  elif group in GROUPS:
    spec = _registries()[group].get(name, f"{group}.name")
    options, doc = spec.options, f"{group} {spec.name!r}: {spec.doc}"
  else:
    raise ConfigError(unknown_key_message(group, group, (*GROUPS, *ENGINE_GROUPS),
                                          "describe"))
  lines = [doc]
  for key, o in options.items():
    lines.append(f"  {group}.{key} = {o.default!r}: {o.doc} ({o.describe()})")
  return "\n".join(lines)


def load_config_module(path: str):
  """Imports a config file (``experiments/configs/NAME.py``) as a module."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  if spec is None:
    raise FileNotFoundError(f"no config file at {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def workdir_config(workdir) -> ml_collections.ConfigDict:
  """The config a meta-training workdir was trained with (its ``config.json``)."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise ConfigError(f"{path} does not exist: {workdir} is not a meta_train.py workdir (or "
                      "training has not started); give --config")
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except json.JSONDecodeError as e:
    raise ConfigError(f"{path} is not valid JSON ({e}); give --config") from None


def check_matches_workdir(config: ml_collections.ConfigDict, workdir) -> None:
  """Refuses a (validated) config that differs from the one ``workdir`` was trained with,
  outside :data:`RESUMABLE_CHANGES` (``eval`` among them), naming each difference."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    return
  conflicts = resume_conflicts(json.loads(path.read_text()), json.loads(config.to_json()))
  if conflicts:
    raise ConfigError(f"{workdir} was trained with a different config:\n  "
                      + "\n  ".join(conflicts) + "\nEvaluate it with its own (omit --config: "
                      f"{path} is used) or give the config it was trained with.")


def resume_conflicts(saved: dict, current: dict, prefix="") -> list[str]:
  """Keys whose values differ between a workdir's saved config and the current one (both
  complete).

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

