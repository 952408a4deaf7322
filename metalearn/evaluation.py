"""Evaluation of a meta-trained learner against baselines on fresh tasks.

For the newest checkpoint in a workdir: learning curves of the task family's metrics (query
MSE for regression; query accuracy and cross-entropy for classification) after ``t`` inner
steps, ``t = 0..eval.num_inner_steps``, on ``eval.num_tasks`` fresh tasks (few-shot tasks: of
the ``eval.split`` classes), with 95% confidence intervals (Student's t over tasks, :func:`mean_ci95`), for

* ``meta``: the meta-learned learner with its own inner loop;
* ``random_init`` (``eval.baselines``): a freshly initialised network, fine-tuned by SGD;
* ``pretrained`` (regression only): a network trained on all tasks jointly (Adam on the pooled
  regression problem), then fine-tuned by SGD (the "pretrained" baseline of Finn et al. 2017).

Baselines use the step size from ``eval.finetune_lrs`` with the lowest mean query loss over
the curve on separate tuning tasks. Writes ``eval.json`` and PNG plots into the workdir: the
metric against inner steps, and the learner's predictions on a few tasks (sinusoid curves, or
a grid of support and query images with predicted labels and a confusion matrix).
"""

import functools
import json
import os
import pathlib
import platform

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from scipy import stats

from metalearn import config as config_lib
from metalearn import experiment as experiment_lib
from metalearn import plots
from metalearn import train as train_lib
from metalearn.checkpoint import Checkpointer
from metalearn.learners import LOPTS
from metalearn.tasks import sample_batch
from metalearn.unroll import unroll

_EVAL_STREAM = 0x6576616C  # keeps evaluation keys apart from training keys of any seed


def _curves(learner, family, theta, episodes, num_steps: int, batch_size: int) -> dict:
  def one(episode):
    measure = lambda th, s, ep: family.metrics(learner.predict(th, s, ep.query_x), ep.query_y)
    return unroll(learner, theta, learner.init_state(theta, episode), episode, num_steps,
                  measure=measure)[1]
  return jax.lax.map(one, episodes, batch_size=batch_size)


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def learning_curves(learner, family, theta, episodes, num_steps: int,
                    batch_size: int = 100) -> dict[str, jax.Array]:
  """Query-metric curves ``{metric: [num_tasks, num_steps + 1]}`` of ``learner`` from
  ``theta`` (``family.metrics``), ``batch_size`` tasks at a time (``vmap`` inside, a loop
  across, bounding memory)."""
  return _curves(learner, family, theta, episodes, num_steps, batch_size)


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def finetune_curves(sgd, family, params, episodes, lrs, num_steps: int,
                    batch_size: int = 100) -> dict[str, jax.Array]:
  """Plain SGD fine-tuning curves from ``params`` for each step size: ``[L, N, T + 1]`` per
  metric.

  ``sgd`` is a learner with per-parameter step sizes (``learn_inner_lr``), used here only to
  take the step size as an input, so all step sizes share one compiled program.
  """
  def per_lr(lr):
    theta = {"params": params, "inner_lr": jax.tree.map(lambda p: jnp.full_like(p, lr), params)}
    return _curves(sgd, family, theta, episodes, num_steps, batch_size)
  return jax.lax.map(per_lr, lrs)


def mean_ci95(values_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and 95% confidence half-width over the leading axis, Student's t:
  ``t_{0.975, n-1} * std / sqrt(n)`` (2.26 for 10 seeds, 1.97 for 500 tasks)."""
  n = values_N.shape[0]
  return values_N.mean(0), stats.t.ppf(0.975, n - 1) * values_N.std(0, ddof=1) / np.sqrt(n)


def _pretrain(config, exp, key):
  """Trains one network on the pooled regression problem of all tasks (Adam)."""
  learner, family = exp.learner, exp.family
  opt = optax.adam(config.eval.pretrain_lr)
  params = learner.init_fn(jax.random.fold_in(key, 0))

  def loss(params, episodes):
    # Pool the tasks' points into one batch (networks read [batch, *input_shape]).
    x = jnp.concatenate([episodes.support_x, episodes.query_x], axis=1)
    y = jnp.concatenate([episodes.support_y, episodes.query_y], axis=1)
    x = x.reshape((-1,) + tuple(family.input_shape))
    return family.loss(learner.apply_fn(params, x), y.reshape((x.shape[0],) + y.shape[2:]))

  def step(carry, i):
    params, opt_state = carry
    episodes = sample_batch(family, jax.random.fold_in(key, i + 1), config.meta_batch_size)
    updates, opt_state = opt.update(jax.grad(loss)(params, episodes), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.jit(lambda p: jax.lax.scan(
      step, (p, opt.init(p)), jnp.arange(config.eval.pretrain_steps)))(params)
  return params


def _tuned_baseline(config, sgd, family, params, tune_episodes, eval_episodes):
  """Fine-tuning curves with the step size of lowest mean query loss on the tuning tasks."""
  lrs = jnp.asarray(config.eval.finetune_lrs, jnp.float32)
  T, b = config.eval.num_inner_steps, config.eval.task_batch_size
  tune = np.asarray(finetune_curves(sgd, family, params, tune_episodes, lrs, T, b)["loss"])
  tune = tune[:, :, 1:] if T else tune
  # A step size that diverges on any tuning task scores +inf.
  best = int(np.argmin(np.where(np.isfinite(tune), tune, np.inf).mean(axis=(1, 2))))
  curves = finetune_curves(sgd, family, params, eval_episodes, lrs[best:best + 1], T, b)
  return ({k: np.asarray(v[0]) for k, v in curves.items()},
          float(config.eval.finetune_lrs[best]))


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


def load_theta(config, workdir: pathlib.Path, exp):
  """Meta-parameters of the newest good checkpoint in ``workdir`` and its step."""
  checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints, read_only=True)
  restored = checkpointer.restore_latest(train_lib.init_state(exp, config.seed))
  checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}; meta-train first: "
                            f"python experiments/meta_train.py --config=... --workdir={workdir}")
  state, step = restored
  return state.theta, step


def evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Evaluates the newest checkpoint; returns the ``eval.json`` content and plots' data."""
  config = config_lib.validate(config)
  workdir = pathlib.Path(workdir)
  exp = experiment_lib.build(config)
  theta, step = load_theta(config, workdir, exp)
  family = experiment_lib.make_family(config, split=config.eval.split,
                                      num_query=config.eval.num_query)
  key = jax.random.fold_in(jax.random.key(config.eval.seed), _EVAL_STREAM)
  k_eval, k_tune, k_init, k_pre = jax.random.split(key, 4)
  episodes = _sample(family, k_eval, config.eval.num_tasks)
  T, b = config.eval.num_inner_steps, config.eval.task_batch_size

  curves = {"meta": learning_curves(exp.learner, family, theta, episodes, T, b)}
  lrs = {"meta": ("meta-learned" if getattr(exp.learner, "learn_inner_lr", False)
                  else getattr(exp.learner, "inner_lr", None))}
  if config.eval.baselines:
    tune_episodes = _sample(family, k_tune, config.eval.num_tuning_tasks)
    sgd = experiment_lib.make_learner(config, family, name="metasgd")
    for name in config.eval.baselines:
      params = (sgd.init_fn(k_init) if name == "random_init"
                else _pretrain(config, exp, k_pre))
      curves[name], lrs[name] = _tuned_baseline(config, sgd, family, params, tune_episodes,
                                                episodes)

  metric = family.primary_metric
  results = {"hardware": hardware(), "checkpoint_step": step, "num_tasks": config.eval.num_tasks,
             "num_support": config.task.num_support, "num_query": config.eval.num_query,
             "learner": config.learner.name, "seed": config.seed, "eval_seed": config.eval.seed,
             "task": _task_summary(config), "metric": metric,
             "report_steps": list(config.eval.report_steps), "methods": {}}
  for name, c in curves.items():
    c = {k: np.asarray(v) for k, v in c.items()}
    diverged = np.sum(~np.isfinite(c[metric]), axis=0)
    if diverged.any():
      logging.warning("%s: the %s diverged (inf/nan) on %d of %d evaluation tasks by step %d.",
                      name, metric, int(diverged[-1]), c[metric].shape[0], T)
    entry = {"inner_lr": lrs[name], "num_diverged": diverged.tolist()}
    for k, v in c.items():
      with np.errstate(invalid="ignore"):
        mean, ci = mean_ci95(v)
      entry[k], entry[f"{k}_ci95"] = mean.tolist(), ci.tolist()
    entry["ci95"] = entry[f"{metric}_ci95"]
    results["methods"][name] = entry
  results["plots"] = {}
  if jax.process_index() != 0:  # every process evaluates (in step with the others); one writes
    return results
  (workdir / "eval.json").write_text(json.dumps(results, indent=2))
  results["plots"][f"{metric}_vs_steps"] = str(plots.metric_vs_steps(
      results, workdir / f"{metric}_vs_inner_steps.png"))
  if config.eval.num_plot_tasks:
    plot_eps = jax.tree.map(lambda a: a[:config.eval.num_plot_tasks], episodes)
    if config.task.name == "sinusoid":
      results["plots"]["predictions"] = str(plots.predictions(
          exp.learner, theta, family, plot_eps, T, workdir / "predictions.png"))
    else:
      results["plots"]["episodes"] = str(plots.episode_grid(
          exp.learner, theta, plot_eps, T, workdir / "episodes.png"))
  return results


def _sample(family, key, num_tasks: int):
  return jax.jit(sample_batch, static_argnums=2)(family, key, num_tasks)


def _task_summary(config) -> dict:
  t = config.task
  if t.name == "sinusoid":
    return {"name": "sinusoid", "num_support": t.num_support}
  return {"name": "few_shot", "dataset": t.dataset, "protocol": t.protocol,
          "split": config.eval.split, "num_ways": t.num_ways, "num_support": t.num_support}


def _cell(mean: float, ci: float, diverged: int, n: int) -> str:
  if diverged:
    return f"diverged on {diverged}/{n} tasks"
  return f"{mean:.3f} ± {ci:.3f}"


def format_table(results: dict) -> str:
  """A markdown table: the query metric +- 95% CI after each reported number of inner steps."""
  steps, metric = results["report_steps"], results.get("metric", "mse")
  lines = ["| method | " + " | ".join(f"{t} step{'s' * (t != 1)}" for t in steps) + " |",
           "|---" * (len(steps) + 1) + "|"]
  for name, m in results["methods"].items():
    cells = [_cell(m[metric][t], m["ci95"][t], m["num_diverged"][t], results["num_tasks"])
             for t in steps]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def evaluate_and_report(config, workdir) -> dict:
  """Runs :func:`evaluate` (few-shot learners), prints the table and where the files are.

  :func:`metalearn.evaluators.evaluate_and_report` picks the evaluator of any learner."""
  if config.learner.name in LOPTS or config.learner.name == "in_context":
    raise ValueError(f"metalearn.evaluation evaluates few-shot learners; evaluate "
                     f"{config.learner.name!r} with metalearn.evaluators.evaluate_and_report")
  results = evaluate(config, workdir)
  if jax.process_index() != 0:
    return results
  print(f"\nQuery {results['metric']} on {results['num_tasks']} fresh "
        f"{results['num_support']}-shot tasks (mean ± 95% CI), checkpoint step "
        f"{results['checkpoint_step']}:\n")
  print(format_table(results))
  print(f"\neval.json: {pathlib.Path(workdir) / 'eval.json'}")
  for name, path in results["plots"].items():
    print(f"plot ({name}): {path}")
  return results
