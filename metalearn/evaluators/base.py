"""The evaluator contract: one outline for every kind of learner, a module per kind.

:func:`evaluate` is the outline every evaluation follows:

1. validate the config (the workdir's ``config.json`` when none is given) and build the
   experiment;
2. restore the meta-parameters of the newest good checkpoint (read-only: it can run beside a
   training job);
3. derive the evaluation key, ``fold_in(key(eval.seed), spec.stream)`` (:func:`eval_key`), apart
   from every training stream;
4. call the evaluator's ``evaluate`` (every process, in step with the others);
5. on process 0: write the report (``eval.md``), the evaluator's plots and, last,
   ``eval.json`` (with the hardware, checkpoint step, seeds and config).

:func:`evaluate_and_report` with ``force=False`` (the binaries, unless ``--force_eval``) skips
steps 2-5 when ``eval.json`` already evaluated the newest checkpoint with the same config
(:func:`previous_results`): re-running a finished run reports it instead of redoing it.

An evaluator's module registers an :class:`EvaluatorSpec` in :data:`EVALUATORS` (the config's
``eval.name``; a task family names the one it gets by default,
:attr:`metalearn.tasks.TaskSpec.evaluator`). Every evaluator has the options ``at_end`` (run
at the end of meta-training) and ``seed``.
"""

import dataclasses
import functools
import json
import os
import pathlib
import platform
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import ml_collections
import numpy as np

from metalearn.registry import Component, Option, Registry
from metalearn.tasks import sample_batch

COMMON_OPTIONS = dict(
    at_end=Option(True, doc="evaluate at the end of meta-training"),
    seed=Option(1, ge=0, lt=2**32, doc="seed of the evaluation tasks"))


class Context(NamedTuple):
  """What an evaluator's ``evaluate`` gets.

  Attributes:
    config: the validated config.
    workdir: the run's directory.
    experiment: ``metalearn.experiment.build(config)``.
    theta: the checkpoint's meta-parameters.
    step: the checkpoint's outer step.
    key: the evaluation key (:func:`eval_key`).
  """
  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  experiment: Any
  theta: Any
  step: int
  key: jax.Array


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluatorSpec(Component):
  """A registered evaluator.

  Attributes:
    evaluate: ``Context -> results`` (a JSON-able dict; every process runs it).
    report: ``results -> str``, markdown printed and written to ``eval.md``.
    plots: ``(results, Context) -> {name: path}``: writes PNGs into the workdir (process 0).
    families: the task-family kinds it evaluates (a task offering one of them as a kind or a
      view, :attr:`metalearn.tasks.TaskSpec.kinds`).
    needs: learner capabilities it needs (:mod:`metalearn.learners.base`).
    stream: the constant its evaluation key is folded with (:func:`eval_key`).
    title: ``results -> str``, the line above the printed report.
  """
  evaluate: Callable[[Context], dict]
  report: Callable[[dict], str]
  plots: Callable[[dict, Context], dict]
  families: tuple[str, ...]
  needs: frozenset[str] = frozenset()
  stream: int
  title: Callable[[dict], str] = lambda results: "Evaluation"


EVALUATORS: Registry[EvaluatorSpec] = Registry("evaluator", "metalearn.evaluators",
                                               EvaluatorSpec)


def register(**kwargs) -> EvaluatorSpec:
  """Registers an :class:`EvaluatorSpec`; ``options`` gain :data:`COMMON_OPTIONS`."""
  options = {**COMMON_OPTIONS, **kwargs.pop("options", {})}
  return EVALUATORS.register(EvaluatorSpec(options=options, **kwargs))


def eval_key(config: ml_collections.ConfigDict, stream: int) -> jax.Array:
  """The evaluation key of an evaluator: ``fold_in(key(eval.seed), stream)``."""
  return jax.random.fold_in(jax.random.key(config.eval.seed), stream)


def mean_ci95(values_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and 95% confidence half-width over the leading axis, Student's t:
  ``t_{0.975, n-1} * std / sqrt(n)`` (2.26 for 10 seeds, 1.97 for 500 tasks)."""
  from scipy import special  # pylint: disable=g-import-not-at-top  (0.3 s: when first used)
  n = values_N.shape[0]
  return values_N.mean(0), special.stdtrit(n - 1, 0.975) * values_N.std(0, ddof=1) / np.sqrt(n)


def hardware() -> str:
  """Where this ran: CPU model and cores, JAX backend and device, versions."""
  cpu = platform.processor() or platform.machine()
  cpuinfo = pathlib.Path("/proc/cpuinfo")
  if cpuinfo.exists():
    names = [l.split(":", 1)[1].strip() for l in cpuinfo.read_text().splitlines()
             if l.startswith("model name")]
    cpu = names[0] if names else cpu
  return (f"{cpu} ({len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable); jax "
          f"{jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}); "
          f"Python {platform.python_version()}")


@functools.partial(jax.jit, static_argnums=2)
def sample(family, key: jax.Array, num_tasks: int):
  """``num_tasks`` tasks of ``family`` (jitted; one program per family structure and count)."""
  return sample_batch(family, key, num_tasks)


def load_theta(config, workdir: pathlib.Path, exp, step: int | None = None):
  """Meta-parameters of the newest good checkpoint in ``workdir`` (or of ``step``) and its
  step."""
  from metalearn import train as train_lib  # pylint: disable=g-import-not-at-top
  from metalearn.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints, read_only=True)
  template = train_lib.state_template(exp, config.seed)
  try:
    if step is None:
      restored = checkpointer.restore_latest(template)
    elif step in checkpointer.steps():
      restored = checkpointer.restore(step, template), step
    else:
      raise FileNotFoundError(f"no checkpoint of step {step} in {workdir / 'checkpoints'}; it "
                              f"has {checkpointer.steps()}")
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}; meta-train first: "
                            f"python experiments/meta_train.py --config=... --workdir={workdir}")
  state, step = restored
  return jax.device_put(state.theta), step


def evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Evaluates the newest checkpoint in ``workdir`` with ``config.eval.name``'s evaluator (see
  the module docstring); returns the ``eval.json`` content with ``plots`` (paths)."""
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  from metalearn import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.validate(config)
  workdir = pathlib.Path(workdir)
  spec = EVALUATORS.get(config.eval.name, "eval.name")
  exp = experiment_lib.build(config)
  theta, step = load_theta(config, workdir, exp)
  ctx = Context(config, workdir, exp, theta, step, eval_key(config, spec.stream))
  results = {"evaluator": spec.name, "hardware": hardware(), "checkpoint_step": step,
             "learner": config.learner.name, "learner_info": exp.learner.describe(),
             "task": config.task.to_dict(), "seed": config.seed,
             "eval_seed": config.eval.seed, "config": config.to_dict()}
  results.update(spec.evaluate(ctx))
  results["plots"] = {}
  if jax.process_index() != 0:  # every process evaluates (in step with the others); one writes
    return results
  (workdir / "eval.md").write_text(spec.title(results) + "\n\n" + spec.report(results) + "\n")
  results["plots"] = {k: str(v) for k, v in spec.plots(results, ctx).items()}
  # Written last: an eval.json means the whole evaluation, plots included, finished.
  (workdir / "eval.json").write_text(json.dumps(results, indent=2))
  return results


def _as_json(tree) -> Any:
  return json.loads(json.dumps(tree))


def previous_results(config: ml_collections.ConfigDict, workdir) -> dict | None:
  """``workdir``'s ``eval.json`` when it is this evaluation of the newest checkpoint (same
  checkpoint step; the same config but for the keys a resume may change), else ``None``:
  re-running a finished run need not evaluate it again."""
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  from metalearn.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  config = config_lib.validate(config)
  path = pathlib.Path(workdir) / "eval.json"
  if not path.exists():
    return None
  try:
    saved = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    logging.warning("%s is damaged (%s): evaluating again.", path, e)
    return None
  checkpointer = Checkpointer(pathlib.Path(workdir) / "checkpoints", config.keep_checkpoints,
                              read_only=True)
  steps = checkpointer.steps()
  checkpointer.close()
  # Keys a resume may change, the eval group aside, do not change what is evaluated.
  ignored = set(config_lib.RESUMABLE_CHANGES) - {"eval"}
  def evaluated(c):
    return {k: v for k, v in _as_json(c).items() if k not in ignored}
  if (saved.get("checkpoint_step") != (steps[-1] if steps else None)
      or evaluated(saved.get("config", {})) != evaluated(config.to_dict())):
    return None
  return saved


def evaluate_and_report(config: ml_collections.ConfigDict, workdir, force: bool = True) -> dict:
  """:func:`evaluate`, then process 0 prints the report and where the files are. With
  ``force=False`` an ``eval.json`` that already evaluated the newest checkpoint with these
  settings (:func:`previous_results`) is reported instead of evaluating again."""
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  results = None if force else previous_results(config, workdir)
  if results is not None:
    logging.info("%s already evaluates checkpoint step %d with these settings: reporting it "
                 "(force a new evaluation with --force_eval).",
                 pathlib.Path(workdir) / "eval.json", results["checkpoint_step"])
  else:
    results = evaluate(config, workdir)
  if jax.process_index() != 0:
    return results
  spec = EVALUATORS.get(config_lib.validate(config).eval.name)
  print(f"\n{spec.title(results)}\n")
  print(spec.report(results))
  print(f"\neval.json: {pathlib.Path(workdir) / 'eval.json'}")
  for name, path in results["plots"].items():
    print(f"plot ({name}): {path}")
  return results
