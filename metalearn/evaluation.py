"""Evaluation of a meta-trained learner against baselines on fresh tasks.

For the newest checkpoint in a workdir: learning curves (query MSE after ``t`` inner steps,
``t = 0..eval.num_inner_steps``) on ``eval.num_tasks`` fresh tasks, with 95% confidence
intervals (``1.96 * std / sqrt(n)``), for

* ``meta``: the meta-learned learner with its own inner loop;
* ``random_init``: a freshly initialised network, fine-tuned by SGD;
* ``pretrained``: a network trained on all tasks jointly (Adam on the pooled regression
  problem), then fine-tuned by SGD (the "pretrained" baseline of Finn et al. 2017).

Both baselines use the step size from ``eval.finetune_lrs`` with the lowest mean loss over the
curve on separate tuning tasks. Writes ``eval.json`` and two PNG plots into the workdir.
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

from metalearn import config as config_lib
from metalearn import experiment as experiment_lib
from metalearn import plots
from metalearn import train as train_lib
from metalearn.checkpoint import Checkpointer
from metalearn.tasks import sample_batch
from metalearn.unroll import unroll

_EVAL_STREAM = 0x6576616C  # keeps evaluation keys apart from training keys of any seed


def _curves(learner, theta, episodes, num_steps: int) -> jax.Array:
  def one(episode):
    return unroll(learner, theta, learner.init_state(theta, episode), episode, num_steps)[1]
  return jax.vmap(one)(episodes)


@functools.partial(jax.jit, static_argnums=(0, 3))
def learning_curves(learner, theta, episodes, num_steps: int) -> jax.Array:
  """Query-loss curves ``[num_tasks, num_steps + 1]`` of ``learner`` from ``theta``."""
  return _curves(learner, theta, episodes, num_steps)


@functools.partial(jax.jit, static_argnums=(0, 4))
def finetune_curves(sgd, params, episodes, lrs, num_steps: int) -> jax.Array:
  """Plain SGD fine-tuning curves from ``params`` for each step size: ``[L, N, T + 1]``.

  ``sgd`` is a learner with per-parameter step sizes (``learn_inner_lr``), used here only to
  take the step size as an input, so all step sizes share one compiled program.
  """
  def per_lr(lr):
    theta = {"params": params, "inner_lr": jax.tree.map(lambda p: jnp.full_like(p, lr), params)}
    return _curves(sgd, theta, episodes, num_steps)
  return jax.vmap(per_lr)(lrs)


def mean_ci95(values_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and 95% confidence half-width over the leading axis."""
  n = values_N.shape[0]
  return values_N.mean(0), 1.96 * values_N.std(0, ddof=1) / np.sqrt(n)


def _pretrain(config, exp, key):
  """Trains one network on the pooled regression problem of all tasks (Adam)."""
  learner, family = exp.learner, exp.family
  opt = optax.adam(config.eval.pretrain_lr)
  params = learner.init_fn(jax.random.fold_in(key, 0))

  def loss(params, episodes):
    x = jnp.concatenate([episodes.support_x, episodes.query_x], axis=1)
    y = jnp.concatenate([episodes.support_y, episodes.query_y], axis=1)
    return family.loss(learner.apply_fn(params, x), y)

  def step(carry, i):
    params, opt_state = carry
    episodes = sample_batch(family, jax.random.fold_in(key, i + 1), config.meta_batch_size)
    updates, opt_state = opt.update(jax.grad(loss)(params, episodes), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.jit(lambda p: jax.lax.scan(
      step, (p, opt.init(p)), jnp.arange(config.eval.pretrain_steps)))(params)
  return params


def _tuned_baseline(config, sgd, params, tune_episodes, eval_episodes):
  lrs = jnp.asarray(config.eval.finetune_lrs, jnp.float32)
  T = config.eval.num_inner_steps
  tune = np.asarray(finetune_curves(sgd, params, tune_episodes, lrs, T))[:, :, 1:]
  # A step size that diverges on any tuning task scores +inf.
  best = int(np.argmin(np.where(np.isfinite(tune), tune, np.inf).mean(axis=(1, 2))))
  curves = finetune_curves(sgd, params, eval_episodes, lrs[best:best + 1], T)[0]
  return np.asarray(curves), float(config.eval.finetune_lrs[best])


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
  family = experiment_lib.make_family(config, num_query=config.eval.num_query)
  key = jax.random.fold_in(jax.random.key(config.eval.seed), _EVAL_STREAM)
  k_eval, k_tune, k_init, k_pre = jax.random.split(key, 4)
  episodes = sample_batch(family, k_eval, config.eval.num_tasks)
  tune_episodes = sample_batch(family, k_tune, config.eval.num_tuning_tasks)
  T = config.eval.num_inner_steps

  curves = {"meta": np.asarray(learning_curves(exp.learner, theta, episodes, T))}
  lrs = {"meta": "meta-learned" if exp.learner.learn_inner_lr else exp.learner.inner_lr}
  baseline_inits = {"random_init": exp.learner.init_fn(k_init),
                    "pretrained": _pretrain(config, exp, k_pre)}
  sgd = experiment_lib.make_learner(config, family, name="metasgd")
  for name, params in baseline_inits.items():
    curves[name], lrs[name] = _tuned_baseline(config, sgd, params, tune_episodes, episodes)

  results = {"hardware": hardware(), "checkpoint_step": step, "num_tasks": config.eval.num_tasks,
             "num_support": config.task.num_support, "num_query": config.eval.num_query,
             "learner": config.learner.name, "seed": config.seed, "eval_seed": config.eval.seed,
             "report_steps": list(config.eval.report_steps), "methods": {}}
  for name, c in curves.items():
    diverged = np.sum(~np.isfinite(c), axis=0)
    if diverged.any():
      logging.warning("%s: the loss diverged (inf/nan) on %d of %d evaluation tasks by step %d.",
                      name, int(diverged[-1]), c.shape[0], T)
    with np.errstate(invalid="ignore"):
      mean, ci = mean_ci95(c)
    results["methods"][name] = {"inner_lr": lrs[name], "mse": mean.tolist(),
                                "ci95": ci.tolist(), "num_diverged": diverged.tolist()}
  (workdir / "eval.json").write_text(json.dumps(results, indent=2))
  results["plots"] = {
      "mse_vs_steps": str(plots.mse_vs_steps(results, workdir / "mse_vs_inner_steps.png")),
  }
  if config.eval.num_plot_tasks:
    plot_eps = jax.tree.map(lambda a: a[:config.eval.num_plot_tasks], episodes)
    results["plots"]["predictions"] = str(plots.predictions(
        exp.learner, theta, family, plot_eps, T, workdir / "predictions.png"))
  return results


def _cell(mean: float, ci: float, diverged: int, n: int) -> str:
  if diverged:
    return f"diverged on {diverged}/{n} tasks"
  return f"{mean:.3f} ± {ci:.3f}"


def format_table(results: dict) -> str:
  """A markdown table: query MSE +- 95% CI after each reported number of inner steps."""
  steps = results["report_steps"]
  lines = ["| method | " + " | ".join(f"{t} step{'s' * (t != 1)}" for t in steps) + " |",
           "|---" * (len(steps) + 1) + "|"]
  for name, m in results["methods"].items():
    cells = [_cell(m["mse"][t], m["ci95"][t], m["num_diverged"][t], results["num_tasks"])
             for t in steps]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def evaluate_and_report(config, workdir) -> dict:
  """Runs :func:`evaluate`, prints the table and where the files are."""
  results = evaluate(config, workdir)
  print(f"\nQuery MSE on {results['num_tasks']} fresh {results['num_support']}-shot tasks "
        f"(mean ± 95% CI), checkpoint step {results['checkpoint_step']}:\n")
  print(format_table(results))
  print(f"\neval.json: {pathlib.Path(workdir) / 'eval.json'}")
  for name, path in results["plots"].items():
    print(f"plot ({name}): {path}")
  return results
