"""Evaluation of a few-shot learner against baselines on fresh tasks (``eval.name='few_shot'``).

For the newest checkpoint in a workdir: learning curves of the task family's metrics (query
MSE for regression; query accuracy and cross-entropy for classification) after ``t`` inner
steps, ``t = 0..eval.num_inner_steps``, on ``eval.num_tasks`` fresh tasks (few-shot tasks: of
the ``eval.split`` classes), with 95% confidence intervals (Student's t over tasks), for

* ``meta``: the meta-learned learner with its own inner loop;
* ``random_init`` (``eval.baselines``): a freshly initialised network of ``config.model``,
  fine-tuned by SGD;
* ``pretrained`` (regression only): a network trained on all tasks jointly (Adam on the pooled
  regression problem), then fine-tuned by SGD (the "pretrained" baseline of Finn et al. 2017).
* ``initial``: the same learner at its meta-parameters before meta-training (the run's
  initialisation): what meta-training added, for any learner.

Baselines use the step size from ``eval.finetune_lrs`` with the lowest mean query loss over
the curve on separate tuning tasks. Plots: the metric against inner steps, and the learner's
predictions on a few tasks (the true function and predictions for 1-D regression families that
declare a ``plot_range``; a grid of support and query images with predicted labels and a
confusion matrix for image classification).
"""

import functools

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from metalearn import experiment, models
from metalearn import plots
from metalearn.evaluators.base import mean_ci95, register, sample
from metalearn.learners.gradient import GradientLearner
from metalearn.registry import ConfigError, Option
from metalearn.tasks import TASKS, sample_batch
from metalearn.unroll import unroll

STREAM = 0x6576616C  # keeps evaluation keys apart from training keys of any seed


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


def _pretrain(config, network, family, key):
  """Trains one network on the pooled regression problem of all tasks (Adam)."""
  opt = optax.adam(config.eval.pretrain_lr)
  params = jax.jit(network.init_fn)(jax.random.fold_in(key, 0))  # one program, not op by op

  def loss(params, episodes):
    # Pool the tasks' points into one batch (networks read [batch, *input_shape]).
    x = jnp.concatenate([episodes.support_x, episodes.query_x], axis=1)
    y = jnp.concatenate([episodes.support_y, episodes.query_y], axis=1)
    x = x.reshape((-1,) + tuple(family.input_shape))
    return family.loss(network.apply_fn(params, x), y.reshape((x.shape[0],) + y.shape[2:]))

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


def eval_family(config: ml_collections.ConfigDict, exp):
  """The family evaluated: the task's ``eval.split`` with ``eval.num_query`` query points per
  task (per class), taken as the learner takes it."""
  task = ml_collections.ConfigDict(config.task.to_dict())
  task.num_query = config.eval.num_query
  family = TASKS.get(task.name).build(task, config.eval.split)
  return family.view(exp.family.kind)


def evaluate(ctx) -> dict:
  """The learning curves of the meta-learner and the baselines (see the module docstring)."""
  config, exp, theta = ctx.config, ctx.experiment, ctx.theta
  family = eval_family(config, exp)
  k_eval, k_tune, k_init, k_pre = jax.random.split(ctx.key, 4)
  episodes = sample(family, k_eval, config.eval.num_tasks)
  T, b = config.eval.num_inner_steps, config.eval.task_batch_size

  curves = {"meta": learning_curves(exp.learner, family, theta, episodes, T, b)}
  lrs = {"meta": exp.learner.describe().get("inner_lr")}
  if "initial" in config.eval.baselines:  # the same learner before meta-training
    theta0 = jax.jit(exp.learner.init)(experiment.run_keys(config.seed)[0])
    curves["initial"] = learning_curves(exp.learner, family, theta0, episodes, T, b)
    lrs["initial"] = lrs["meta"]
  finetuned = [name for name in config.eval.baselines if name != "initial"]
  if finetuned:
    tune_episodes = sample(family, k_tune, config.eval.num_tuning_tasks)
    network = models.make(config.model, family.input_shape, family.output_dim)
    sgd = GradientLearner(network.init_fn, network.apply_fn, family.loss, 0.01,
                          learn_inner_lr=True)
    for name in finetuned:
      params = (jax.jit(network.init_fn)(k_init) if name == "random_init"
                else _pretrain(config, network, family, k_pre))
      curves[name], lrs[name] = _tuned_baseline(config, sgd, family, params, tune_episodes,
                                                episodes)

  metric = family.primary_metric
  results = {"num_tasks": config.eval.num_tasks, "num_support": config.task.get("num_support"),
             "support_rows": int(episodes.support_x.shape[1]),
             "num_query": config.eval.num_query, "metric": metric,
             "report_steps": list(config.eval.report_steps), "methods": {},
             # The task as evaluated: its classes are the eval split's.
             "task": {**config.task.to_dict(), "split": config.eval.split,
                      "num_query": config.eval.num_query}}
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
  return results


def make_plots(results: dict, ctx) -> dict:
  """The metric against inner steps, and predictions on ``eval.num_plot_tasks`` tasks."""
  config, exp = ctx.config, ctx.experiment
  metric = results["metric"]
  out = {f"{metric}_vs_steps": plots.metric_vs_steps(
      results, ctx.workdir / f"{metric}_vs_inner_steps.png")}
  n, T = config.eval.num_plot_tasks, config.eval.num_inner_steps
  if not n:
    return out
  family = eval_family(config, exp)
  k_eval = jax.random.split(ctx.key, 4)[0]
  episodes = jax.tree.map(lambda a: a[:n], sample(family, k_eval, config.eval.num_tasks))
  spec = TASKS.get(config.task.name)
  if spec.target == "regression" and family.plot_range is not None:
    out["predictions"] = plots.predictions(exp.learner, ctx.theta, family, episodes, T,
                                           ctx.workdir / "predictions.png")
  elif spec.target == "classification" and spec.inputs == "image":
    out["episodes"] = plots.episode_grid(exp.learner, ctx.theta, episodes, T,
                                         ctx.workdir / "episodes.png")
  return out


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


def _title(results: dict) -> str:
  shots = results.get("num_support")  # tasks without one (a chapter to read) give their rows
  tasks = (f"{shots}-shot tasks" if shots is not None
           else f"tasks of {results['support_rows']} support rows")
  return (f"Query {results['metric']} on {results['num_tasks']} fresh {tasks} (mean ± 95% "
          f"CI), checkpoint step {results['checkpoint_step']}:")


def _check(config) -> None:
  e = config.eval
  if max(e.report_steps) > e.num_inner_steps or min(e.report_steps) < 0:
    raise ConfigError(f"config key 'eval.report_steps' = {tuple(e.report_steps)} must lie in "
                      f"[0, eval.num_inner_steps={e.num_inner_steps}]")
  network = models.MODELS.get(config.model.name).kind == "network"
  if not network and set(e.baselines) - {"initial"}:
    raise ConfigError(f"eval.baselines={tuple(e.baselines)}: 'random_init' and 'pretrained' "
                      f"fine-tune a network by SGD, and model {config.model.name!r} is not one; "
                      "use ('initial',) or ()")
  if "pretrained" in e.baselines and TASKS.get(config.task.name).target != "regression":
    raise ConfigError("eval.baselines: 'pretrained' (training one network on the pooled "
                      f"regression problem) is for regression tasks; {config.task.name} takes "
                      "('random_init',) or ()")


register(
    name="few_shot", doc="learning curves on fresh episodes beside SGD fine-tuning baselines",
    evaluate=evaluate, report=format_table, plots=make_plots, title=_title,
    families=("episodes",), stream=STREAM, check=_check,
    options=dict(
        split=Option("test", choices=("train", "validation", "test"),
                     doc="which classes (few-shot tasks) or alphabets tasks come from"),
        num_tasks=Option(600, ge=2, doc="evaluation tasks"),
        num_query=Option(100, ge=1, doc="query points (per class) of an evaluation task"),
        num_inner_steps=Option(10, ge=0, doc="inner steps of the evaluated curves"),
        report_steps=Option((0, 1, 5, 10), length=(1, None), element=int,
                            doc="the table's inner-step columns"),
        baselines=Option(("random_init",), choices=("random_init", "pretrained", "initial"),
                         doc="SGD fine-tuning baselines; 'initial': the learner before "
                         "meta-training"),
        pretrain_steps=Option(10_000, ge=0, doc="Adam steps of the pretrained baseline"),
        pretrain_lr=Option(1e-3, gt=0, doc="its learning rate"),
        finetune_lrs=Option((0.001, 0.003, 0.01, 0.03, 0.1), gt=0, length=(1, None),
                            doc="the baselines' step-size grid"),
        num_tuning_tasks=Option(200, ge=1, doc="tasks the baselines' step size is tuned on"),
        num_plot_tasks=Option(4, ge=0, doc="tasks in the predictions plot"),
        task_batch_size=Option(100, ge=1, doc="tasks evaluated at once")))
