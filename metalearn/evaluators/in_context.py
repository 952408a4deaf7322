"""Evaluating an in-context learner: error against the number of in-context examples, beside
classical learners run on the same prompts.

For ``eval.num_tasks`` fresh prompts (seed ``eval.seed``) of each evaluation set, every method
predicts each ``y_k`` from ``x_k`` and the ``k`` examples before it:

* regression (``icl_regression``): normalised squared error ``(y_hat - y)^2 / Var(y)`` of the
  model and of ``eval.baselines`` (:mod:`metalearn.learners.icl_baselines`; ``gd`` is
  ``eval.gd_steps`` steps of gradient descent at the step size best on up to 4096 other prompts
  (after the last example, a grid refined around its best value);
  ``ridge`` uses ``lambda = noise_std^2``, the Bayes estimator under the Gaussian prior;
  ``bayes`` the posterior mean under the finite pool). Sets: ``in_distribution``,
  ``gaussian_tasks`` for a finite pool (fresh ``w ~ N(0, I)``, Raventos et al.'s test) and each
  of ``eval.ood`` (:meth:`~metalearn.tasks.RegressionPrompts.out_of_distribution`). With the
  ``gd`` baseline, ``alignment`` is von Oswald et al.'s comparison at the last position: the
  mean cosine between the model's and one-step GD's sensitivities ``d y_hat / d x_query``.
* classification (``icl_classification``): accuracy and cross-entropy on ``seen`` tasks (the
  ``num_tasks`` the model was trained on) and ``unseen`` ones (fresh projections), beside
  logistic regression fitted to the prompt's earlier examples.

Means come with 95% confidence intervals over prompts. A curriculum family is evaluated at its
final size (the step ``num_steps``).
"""

import dataclasses
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn.evaluators import base
from metalearn.learners import icl_baselines as bl
from metalearn.registry import ConfigError, Option
from metalearn.tasks import TASKS
from metalearn import plots

STREAM = 0x1C1  # evaluation prompts: fold_in(key(eval.seed), STREAM), apart from training's
GD_LRS = np.geomspace(0.01, 30.0, 71)  # the gd baseline's step-size grid, refined around its best
MAX_TUNING_PROMPTS = 4096  # gd's step size is tuned on min(this, 4 x eval.num_tasks) prompts


def evaluation_sets(config: ml_collections.ConfigDict, family) -> dict:
  """``name -> family``: what the learner is evaluated on."""
  family = family.at_step(config.num_steps)
  if family.is_classification:
    return {"seen": family, "unseen": family.with_tasks(0)}
  sets = {"in_distribution": family}
  if family.function_class == "linear_pool":  # Raventos: new tasks from the Gaussian prior
    sets["gaussian_tasks"] = dataclasses.replace(family, function_class="linear")
  return {**sets,
          **{k: family.out_of_distribution(k, config.eval.seed) for k in config.eval.ood}}


def _baseline_fns(config, family, tune_prompts) -> dict:
  """``name -> (x_ND, y_N) -> predictions`` for ``eval.baselines``."""
  fns = {}
  for name in config.eval.baselines:
    if name == "gd":
      for s in config.eval.gd_steps:
        x, y = tune_prompts.support_x, tune_prompts.support_y
        coarse = float(bl.best_gd_lr(x, y, s, GD_LRS))
        ratio = GD_LRS[1] / GD_LRS[0]
        lr = float(bl.best_gd_lr(x, y, s, np.geomspace(coarse / ratio, coarse * ratio, 41)))
        if not np.isfinite(lr):
          raise FloatingPointError(f"the gd baseline diverged at every step size of "
                                   f"[{GD_LRS[0]}, {GD_LRS[-1]}] with {s} step(s): widen "
                                   "metalearn.evaluators.in_context.GD_LRS or drop 'gd' from "
                                   "eval.baselines")
        fns[f"gd_{s}"] = (lambda s, lr: lambda x, y: bl.gradient_descent(x, y, s, lr))(s, lr)
    elif name == "ridge":
      lam = max(family.noise_std ** 2, 1e-6)
      fns[name] = lambda x, y, lam=lam: bl.ridge(x, y, lam)
    elif name == "bayes":
      fns[name] = lambda x, y: bl.bayes_discrete(x, y, family.pool_w,
                                                 max(family.noise_std, 1e-3))
    elif name == "logistic_regression":
      fns[name] = lambda x, y: bl.logistic_regression(x, y, family.num_classes)
    else:
      fns[name] = bl.REGRESSION_BASELINES[name]
  return fns


def _metrics(family, pred, y_N) -> dict:
  if family.is_classification:
    return {"accuracy": (jnp.argmax(pred, -1) == y_N).astype(jnp.float32),
            "loss": family.prompt_loss(pred, y_N)}
  return {"nse": family.prompt_loss(pred, y_N)}


def _per_position(fn, family, prompts, batch_size: int) -> dict:
  """``metric -> [P, N]`` of ``fn(x, y) -> predictions`` over all prompts (in batches)."""
  one = lambda p: _metrics(family, fn(p.support_x, p.support_y), p.support_y)
  out = jax.jit(lambda ps: jax.lax.map(one, ps, batch_size=batch_size))(prompts)
  return {k: np.asarray(v) for k, v in out.items()}


def alignment(model_fn, gd_fn, prompts, batch_size: int) -> dict:
  """Mean cosine between ``d y_hat_{N-1} / d x_{N-1}`` of the model and of ``gd_fn`` (the
  implied linear update), and the mean squared distance of their predictions there."""
  def one(p):
    def at_last(fn):
      f = lambda xq: fn(p.support_x.at[-1].set(xq), p.support_y)[-1]
      return f(p.support_x[-1]), jax.grad(f)(p.support_x[-1])
    (y_m, g_m), (y_g, g_g) = at_last(model_fn), at_last(gd_fn)
    cos = g_m @ g_g / (jnp.linalg.norm(g_m) * jnp.linalg.norm(g_g) + 1e-12)
    return cos, jnp.square(y_m - y_g)
  cos, dist = jax.jit(lambda ps: jax.lax.map(one, ps, batch_size=batch_size))(prompts)
  return {"cosine": float(jnp.mean(cos)), "cosine_ci95": float(base.mean_ci95(
      np.asarray(cos))[1]), "squared_distance": float(jnp.mean(dist))}


def evaluate(ctx: base.Context) -> dict:
  """Every evaluation set: the learner and the baselines at each number of examples."""
  from metalearn import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
  config, theta = ctx.config, ctx.theta
  results = {"num_tasks": config.eval.num_tasks, "model": config.model.to_dict(),
             "layout": config.learner.layout, "report_points": list(config.eval.report_points),
             "sets": {}}
  for i, (set_name, family) in enumerate(evaluation_sets(config, ctx.experiment.family).items()):
    k_eval, k_tune = jax.random.split(jax.random.fold_in(ctx.key, i))
    prompts = base.sample(family, k_eval, config.eval.num_tasks)
    learner = experiment_lib.make_learner(config, family)
    methods = {"model": lambda x, y, learner=learner: learner.predict_prompt(theta, x, y)}
    tune = base.sample(family, k_tune, min(MAX_TUNING_PROMPTS, 4 * config.eval.num_tasks))
    methods.update(_baseline_fns(config, family, tune))
    entry = {"metric": family.primary_metric, "methods": {}}
    for name, fn in methods.items():
      per = _per_position(fn, family, prompts, config.eval.task_batch_size)
      m = {}
      for k, v in per.items():
        mean, ci = base.mean_ci95(v)
        m[k], m[f"{k}_ci95"] = mean.tolist(), ci.tolist()
      m["num_nonfinite"] = int(np.sum(~np.isfinite(per[family.primary_metric])))
      if m["num_nonfinite"]:
        logging.warning("%s on %s: %d non-finite predictions (of %d prompts x positions); "
                        "its means are NaN where they occur.", name, set_name,
                        m["num_nonfinite"], per[family.primary_metric].size)
      entry["methods"][name] = m
    if "gd_1" in methods:
      entry["alignment"] = alignment(methods["model"], methods["gd_1"], prompts,
                                     config.eval.task_batch_size)
    results["sets"][set_name] = entry
  return results


def _plots(results: dict, ctx: base.Context) -> dict:
  out = {}
  for set_name, entry in results["sets"].items():
    path = ctx.workdir / f"{entry['metric']}_vs_examples_{set_name}.png"
    out[set_name] = plot(entry, f"{ctx.config.task.name}: {set_name}", path)
  return out


def plot(entry: dict, title: str, path: pathlib.Path) -> pathlib.Path:
  """Metric against the number of in-context examples, one line (with CI band) per method."""
  plt = plots.pyplot()
  metric = entry["metric"]
  fig, ax = plt.subplots(figsize=(7, 4))
  highs = []
  for name, m in entry["methods"].items():
    mean, ci = np.asarray(m[metric]), np.asarray(m[f"{metric}_ci95"])
    k = np.arange(len(mean))
    model = name == "model"
    line, = ax.plot(k, mean, label=name, lw=2.5 if model else 1.2, marker=None if model else ".",
                    color="black" if model else None, zorder=3 if model else 2)
    # the band in its line's colour; light for baselines, so that overlapping bands stay legible
    ax.fill_between(k, mean - ci, mean + ci, color=line.get_color(),
                    alpha=0.2 if model else 0.08, lw=0)
    finite = np.isfinite(mean + ci)
    highs.append(np.max((mean + ci)[finite], initial=0.0))
  ax.set_xlabel("in-context examples")
  top = max(highs)
  label = {"nse": "normalised squared error"}.get(metric, metric)
  if metric == "nse" and top > 3:  # e.g. least squares' spike where k ~ dim: every point shown,
    ax.set_yscale("symlog", linthresh=1.0)  # linear up to 1 (where methods differ), log above
    label += " (linear to 1, log above)"
  ax.set_ylim(0, 1.1 * top if top > 0 else 1.0)
  ax.set_ylabel(label)
  ax.set_title(title)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def format_table(results: dict) -> str:
  """Markdown: each set's metric (mean +- 95% CI) at ``report_points`` examples."""
  points, lines = results["report_points"], []
  for set_name, entry in results["sets"].items():
    metric = entry["metric"]
    lines += [f"**{set_name}** ({metric})", "",
              "| method | " + " | ".join(f"k={k}" for k in points) + " |",
              "|---" * (len(points) + 1) + "|"]
    for name, m in entry["methods"].items():
      lines.append(f"| {name} | " + " | ".join(
          f"{m[metric][k]:.3f} ± {m[metric + '_ci95'][k]:.3f}" for k in points) + " |")
    lines.append("")
  return "\n".join(lines)


def _title(results: dict) -> str:
  return (f"In-context learning curves on {results['num_tasks']} fresh prompts per set "
          f"(mean ± 95% CI), checkpoint step {results['checkpoint_step']}:")


REGRESSION_BASELINES = ("least_squares", "ridge", "averaging", "knn_3", "lasso", "gd", "bayes")
CLASSIFICATION_BASELINES = ("logistic_regression",)
OOD_SETS = ("scaled_x", "skewed_covariance", "noisy_labels")


def _check(config) -> None:
  e, t = config.eval, config.task
  regression = TASKS.get(t.name).target == "regression"
  allowed = REGRESSION_BASELINES if regression else CLASSIFICATION_BASELINES
  if not set(e.baselines) <= set(allowed):
    raise ConfigError(f"config key 'eval.baselines' = {tuple(e.baselines)}: {t.name} prompts "
                      f"take baselines from {list(allowed)}")
  if "bayes" in e.baselines and t.get("function_class") != "linear_pool":
    raise ConfigError("eval.baselines 'bayes' (the discrete-prior Bayes estimator) needs "
                      "task.function_class='linear_pool'")
  if e.ood and not regression:
    raise ConfigError(f"config key 'eval.ood': out-of-distribution prompt sets are for "
                      f"regression prompts; set eval.ood=() for {t.name}")
  steps = TASKS.get(t.name).steps(t)
  if max(e.report_points) > steps:
    raise ConfigError(f"config key 'eval.report_points' = {tuple(e.report_points)} must be "
                      f"below task.num_points ({steps + 1})")


base.register(
    name="in_context", doc="in-context learning curves beside classical learners on the same "
    "prompts", evaluate=evaluate, report=format_table, plots=_plots, title=_title,
    families=("prompts",), stream=STREAM, check=_check,
    options=dict(
        num_tasks=Option(1280, ge=2, doc="evaluation prompts per set"),
        task_batch_size=Option(256, ge=1, doc="prompts evaluated at once"),
        baselines=Option(("least_squares", "averaging", "knn_3"),
                         choices=REGRESSION_BASELINES + CLASSIFICATION_BASELINES,
                         doc="classical learners on the same prompts (regression: "
                         f"{', '.join(REGRESSION_BASELINES)}; classification: "
                         "logistic_regression)"),
        gd_steps=Option((1, 2, 3), ge=1, element=int, doc="steps of the gd baselines"),
        report_points=Option((0, 1, 2, 5, 10), ge=0, length=(1, None), element=int,
                             doc="the table's numbers of in-context examples"),
        ood=Option((), choices=OOD_SETS, element=str,
                   doc="out-of-distribution prompt sets (regression)")))
