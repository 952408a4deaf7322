"""Evaluating a learned optimizer against hand-designed ones on held-out training tasks.

For every evaluation set (the training family's held-out tasks, and out-of-family sets:
``wider`` (4x widths) or ``deeper`` (two more layers) networks, ``other_data`` (teacher labels
for a family trained on Gaussian mixtures and vice versa), ``omniglot_data`` (Omniglot
characters at 8x8, from ``$METALEARN_OMNIGLOT_DIR``), ``long_horizon`` (``horizon_multiplier``
times the trained horizon)), each method trains every task for the set's horizon from the same
initialisation on the same batches:

* the learned optimizer, told the set's horizon;
* Adam and SGD with momentum at every step size of ``eval.lrs`` (one compiled program per
  method and set: the step size is a ``vmap``-ed argument). Their curves are cached in
  ``<workdir>/baselines/`` keyed by everything they depend on, so re-evaluating a new
  checkpoint only trains the learned optimizer.

Reported per method: the final validation loss (mean over ``valid_batches`` fresh batches), the
mean training loss along the trajectory, divergences (non-finite losses), and per step size how
many tasks the learned optimizer beats. *Tuned* baselines pick their step size on separate
tuning tasks (``num_tuning_tasks``) by the criterion they are compared on: final validation
loss, or mean training loss. The *speedup* is VeLO-style: how many steps tuned Adam needs to
reach the learned optimizer's final (smoothed) training loss, over the horizon; above 1 means
the learned optimizer gets there faster.
"""

import functools
import hashlib
import json
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn.evaluators import base
from metalearn.learners import OptimizerLearner, adam_rule, sgd_momentum_rule
from metalearn.registry import ConfigError, Option
from metalearn.tasks import TASKS, ClassificationTraining
from metalearn.unroll import unroll
from metalearn import plots

STREAM = 0x10F7  # evaluation tasks: fold_in(key(eval.seed), STREAM), apart from training's
# One instance each: the rules are static arguments of the compiled evaluation.
BASELINES = {"adam": adam_rule(), "sgd_momentum": sgd_momentum_rule()}
SMOOTH = 20  # steps of the moving average applied to training curves for the speedup


def evaluation_sets(config: ml_collections.ConfigDict, family) -> dict[str, tuple[object, int]]:
  """``name -> (family, horizon)``: ``in_family`` and each of ``eval.ood`` (the family's
  :meth:`~metalearn.tasks.TrainingFamily.variant` sets, or ``long_horizon``)."""
  T = config.learner.num_inner_steps
  sets = {"in_family": (family, T)}
  for name in config.eval.ood:
    if name == "long_horizon":
      sets[name] = (family, T * config.eval.horizon_multiplier)
    else:
      sets[name] = (family.variant(name, config), T)
  return sets


def trajectories(learner: OptimizerLearner, thetas, tasks, num_steps: int, valid_batches: int,
                 segment: int | None = None):
  """Training curves ``[M, N, T + 1]`` and final validation losses ``[M, N]`` of ``M``
  meta-parameter settings (leading axis of ``thetas``) on ``N`` tasks, the rule told the
  horizon ``T = num_steps``.

  The horizon runs as ``T / segment`` calls of one compiled ``segment``-step unroll (default:
  one call of ``T`` steps), carrying the inner state: the curve and the numbers are those of
  one unroll, and horizons that are multiples of one segment (the in-family horizon and its
  ``long_horizon`` multiple) share a program. Programs are compiled once per (family
  structure, rule, segment), so evaluating many checkpoints reuses them.
  """
  segment = segment or num_steps
  if num_steps % segment:
    raise ValueError(f"num_steps={num_steps} is not a multiple of segment={segment}")
  family, rule = learner.family, learner.rule
  states = _init_states(family, thetas, tasks, rule, jnp.asarray(num_steps, jnp.int32))
  curves = []
  for i in range(num_steps // segment):
    states, curve = _unroll_segment(family, thetas, states, tasks, rule, segment)
    curves.append(curve if i == 0 else curve[..., 1:])  # its [0] is the last segment's [-1]
  return jnp.concatenate(curves, axis=-1), _valid_losses(family, states, tasks, rule,
                                                         valid_batches)


@functools.partial(jax.jit, static_argnames=("rule",))
def _init_states(family, thetas, tasks, rule, num_steps):
  # the horizon is a value (rules keep it in their state): one program for every horizon
  learner = OptimizerLearner(family, rule, num_steps)
  return jax.vmap(lambda theta: jax.vmap(lambda t: learner.init_state(theta, t))(tasks))(thetas)


@functools.partial(jax.jit, static_argnames=("rule", "segment"))
def _unroll_segment(family, thetas, states, tasks, rule, segment):
  # The horizon the rule is told is in its state (from _init_states); a step does not read
  # the learner's num_steps.
  learner = OptimizerLearner(family, rule, segment)
  run = lambda theta, state, task: unroll(learner, theta, state, task, segment)
  return jax.vmap(lambda theta, st: jax.vmap(lambda s, t: run(theta, s, t))(st, tasks))(
      thetas, states)


@functools.partial(jax.jit, static_argnames=("rule", "valid_batches"))
def _valid_losses(family, states, tasks, rule, valid_batches):
  learner = OptimizerLearner(family, rule, 1)
  valid = lambda state, task: jnp.mean(jax.vmap(lambda i: learner.valid_loss(state, task, i))(
      jnp.arange(valid_batches)))
  return jax.vmap(lambda st: jax.vmap(valid)(st, tasks))(states)


def _cache_key(*parts) -> str:
  return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


def baseline_curves(name: str, family, tasks, num_steps: int, lrs, valid_batches: int,
                    cache_dir: pathlib.Path | None, key_parts,
                    segment: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """``(curves [L, N, T + 1], valid [L, N])`` of baseline ``name`` at every step size, read
  from ``cache_dir`` when an identical evaluation was cached there (``segment``: see
  :func:`trajectories`)."""
  path = None
  if cache_dir is not None:
    path = cache_dir / f"{name}-{_cache_key(name, family, num_steps, lrs, valid_batches, *key_parts)}.npz"
    if path.exists():
      with np.load(path) as f:
        return f["curves"], f["valid"]
  learner = OptimizerLearner(family, BASELINES[name], num_steps)
  thetas = {"lr": jnp.asarray(lrs, jnp.float32)}
  curves, valid = (np.asarray(x) for x in trajectories(learner, thetas, tasks, num_steps,
                                                        valid_batches, segment))
  if path is not None and jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, curves=curves, valid=valid)
  return curves, valid


def smooth(curves: np.ndarray, window: int = SMOOTH) -> np.ndarray:
  """Trailing moving average over the last axis (shorter at the start)."""
  c = np.cumsum(np.nan_to_num(curves, nan=np.inf), axis=-1)
  out = np.empty_like(c)
  out[..., :window] = c[..., :window] / np.arange(1, min(window, c.shape[-1]) + 1)
  out[..., window:] = (c[..., window:] - c[..., :-window]) / window
  return out


def speedup(learner_curves: np.ndarray, adam_curves: np.ndarray) -> np.ndarray:
  """Per task: steps Adam needs to reach the learner's final smoothed training loss, over the
  horizon (``inf`` when Adam never reaches it within the horizon)."""
  target = smooth(learner_curves)[..., -1]
  best = np.minimum.accumulate(smooth(adam_curves), axis=-1)
  reached = best <= target[..., None]
  T = learner_curves.shape[-1] - 1
  return np.where(reached.any(-1), np.argmax(reached, -1) / T, np.inf)


def _summary(curves, valid) -> dict:
  """Per-method numbers over tasks (curves ``[N, T + 1]``, valid ``[N]``)."""
  finite = np.isfinite(curves).all(-1) & np.isfinite(valid)
  mean_train = np.mean(curves[..., 1:], -1)
  with np.errstate(invalid="ignore"):
    v_mean, v_ci = base.mean_ci95(np.where(finite, valid, np.nan)[:, None])
    m_mean, m_ci = base.mean_ci95(np.where(finite, mean_train, np.nan)[:, None])
  return {"final_valid": float(v_mean[0]), "final_valid_ci95": float(v_ci[0]),
          "mean_train": float(m_mean[0]), "mean_train_ci95": float(m_ci[0]),
          "diverged": int(np.sum(~finite)),
          "ends_above_start": int(np.sum(smooth(curves)[..., -1] > curves[..., 0]))}


def evaluate_set(config, learner_theta, rule, family, num_steps, key, cache_dir,
                 segment: int | None = None) -> dict:
  """All methods on one evaluation set; returns the set's entry of ``eval.json``. Its
  ``num_steps`` run in segments of ``segment`` steps (:func:`trajectories`)."""
  e = config.eval
  k_eval, k_tune = jax.random.split(key)
  tasks = base.sample(family, k_eval, e.num_tasks)
  tune = base.sample(family, k_tune, e.num_tuning_tasks)
  learner = OptimizerLearner(family, rule, num_steps)
  one = jax.tree.map(lambda x: x[None], learner_theta)
  curves, valid = (np.asarray(x[0]) for x in trajectories(learner, one, tasks, num_steps,
                                                           e.valid_batches, segment))
  lrs = tuple(float(x) for x in e.lrs)
  out = {"horizon": num_steps, "family": str(family.__class__.__name__) + _describe(family),
         "learned": {**_summary(curves, valid), "mean_curve": np.nanmean(curves, 0).tolist()},
         "baselines": {}}
  for name in e.baselines:
    key_parts = (e.seed, e.num_tasks, e.num_tuning_tasks, jax.random.key_data(key).tolist())
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), tasks, tune)
    all_curves, all_valid = baseline_curves(name, family, both, num_steps, lrs, e.valid_batches,
                                            cache_dir, key_parts, segment)
    n = e.num_tasks
    b_curves, b_valid = all_curves[:, :n], all_valid[:, :n]
    t_curves, t_valid = all_curves[:, n:], all_valid[:, n:]
    with np.errstate(invalid="ignore"):
      tune_valid = np.where(np.isfinite(t_valid), t_valid, np.inf).mean(-1)
      tune_mean = np.where(np.isfinite(t_curves).all(-1), t_curves[..., 1:].mean(-1),
                           np.inf).mean(-1)
    best_valid, best_mean = int(np.argmin(tune_valid)), int(np.argmin(tune_mean))
    per_lr = {}
    for i, lr in enumerate(lrs):
      s = _summary(b_curves[i], b_valid[i])
      ok = np.isfinite(valid)
      s["learned_wins_final_valid"] = int(np.sum(ok & ~(b_valid[i] <= valid)))
      s["mean_curve"] = np.nanmean(b_curves[i], 0).tolist()
      per_lr[f"{lr:g}"] = s
    spd = speedup(curves, b_curves[best_valid])
    out["baselines"][name] = {
        "per_lr": per_lr, "tuned_lr_final_valid": lrs[best_valid],
        "tuned_lr_mean_train": lrs[best_mean],
        "tuned_final_valid": per_lr[f"{lrs[best_valid]:g}"]["final_valid"],
        "tuned_mean_train": per_lr[f"{lrs[best_mean]:g}"]["mean_train"],
        "speedup_median": float(np.median(spd)), "speedup_per_task": spd.tolist()}
  return out


def _describe(family) -> str:
  if isinstance(family, ClassificationTraining):
    return (f"({family.network} {list(family.hidden)} {family.activation}, {family.data}, "
            f"batch {family.batch_size})")
  return f"({family})"


def evaluate(ctx: base.Context) -> dict:
  """Every evaluation set, the learned optimizer beside every baseline step size; every set's
  horizon runs in segments of the trained horizon, so ``long_horizon`` reuses the in-family
  programs."""
  config, exp = ctx.config, ctx.experiment
  results = {"num_tasks": config.eval.num_tasks, "lrs": list(config.eval.lrs),
             "report_lrs": list(config.eval.report_lrs), "sets": {}}
  for i, (name, (family, T)) in enumerate(evaluation_sets(config, exp.family).items()):
    logging.info("Evaluating %s on %s (%d steps)", config.learner.name, name, T)
    results["sets"][name] = evaluate_set(config, ctx.theta, exp.learner.rule, family, T,
                                         jax.random.fold_in(ctx.key, i),
                                         ctx.workdir / "baselines",
                                         segment=config.learner.num_inner_steps)
  return results


def _fmt(mean, ci):
  return f"{mean:.3f} ± {ci:.3f}" if np.isfinite(mean) else "n/a"


def format_report(results: dict) -> str:
  """Markdown: per set, the learned optimizer beside every baseline step size."""
  lines = []
  for name, s in results["sets"].items():
    n, lopt = results["num_tasks"], s["learned"]
    lines += [f"### {name}: {s['family']}, {s['horizon']} steps, {n} tasks", "",
              "| method | final validation loss | mean training loss | diverged | learned wins "
              "(final valid) |", "|---|---|---|---|---|",
              f"| learned ({results['learner']}) | {_fmt(lopt['final_valid'], lopt['final_valid_ci95'])} "
              f"| {_fmt(lopt['mean_train'], lopt['mean_train_ci95'])} | {lopt['diverged']}/{n} | |"]
    for b, entry in s["baselines"].items():
      for lr, r in entry["per_lr"].items():
        lines.append(f"| {b} lr={lr} | {_fmt(r['final_valid'], r['final_valid_ci95'])} | "
                     f"{_fmt(r['mean_train'], r['mean_train_ci95'])} | {r['diverged']}/{n} | "
                     f"{r['learned_wins_final_valid']}/{n} |")
    lines.append("")
    for b, entry in s["baselines"].items():
      ratio = lopt["mean_train"] / entry["tuned_mean_train"]
      lines.append(f"- tuned {b}: lr {entry['tuned_lr_final_valid']:g} by final validation loss "
                   f"({entry['tuned_final_valid']:.3f}), lr {entry['tuned_lr_mean_train']:g} by "
                   f"mean training loss ({entry['tuned_mean_train']:.3f}); learned / tuned mean "
                   f"training loss = {ratio:.2f}; median speedup vs tuned {b} = "
                   f"{entry['speedup_median']:.2f}")
    lines.append("")
  return "\n".join(lines)


def plot_curves(results: dict, path: pathlib.Path) -> pathlib.Path:
  """Mean training curves of the learned optimizer and every Adam step size, per set."""
  plt = plots.pyplot()
  sets = results["sets"]
  fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
  for ax, (name, s) in zip(axes[0], sets.items()):
    if "adam" in s["baselines"]:
      for lr, r in s["baselines"]["adam"]["per_lr"].items():
        ax.plot(smooth(np.asarray(r["mean_curve"])), lw=0.8, alpha=0.7, label=f"Adam {lr}")
    ax.plot(smooth(np.asarray(s["learned"]["mean_curve"])), "k", lw=2, label="learned")
    ax.set(title=name, xlabel="inner step", ylabel="training loss (smoothed)", yscale="log")
  axes[0][0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _title(results: dict) -> str:
  return (f"Learned optimizer {results['learner']} (checkpoint step "
          f"{results['checkpoint_step']}) vs hand-designed optimizers:")


def _plots(results: dict, ctx: base.Context) -> dict:
  return {"learning_curves": plot_curves(results, ctx.workdir / "learning_curves.png")}


def bars(results: dict) -> list[tuple[str, bool, str]]:
  """The ``small`` reproduction's bars, each ``(bar, met, the numbers)``."""
  out = []
  s = results["sets"]["in_family"]
  n = results["num_tasks"]
  adam = s["baselines"].get("adam")
  if adam is not None:
    for lr in results["report_lrs"]:
      wins = adam["per_lr"][f"{lr:g}"]["learned_wins_final_valid"]
      out.append((f"beats Adam lr={lr:g} on >= 80% of held-out in-family tasks "
                  "(final validation loss)", wins >= 0.8 * n, f"{wins}/{n}"))
    ratio = s["learned"]["mean_train"] / adam["tuned_mean_train"]
    out.append(("mean training loss within 2x of the best-tuned Adam's", ratio <= 2.0,
                f"{s['learned']['mean_train']:.3f} vs {adam['tuned_mean_train']:.3f} "
                f"(lr {adam['tuned_lr_mean_train']:g}): {ratio:.2f}x"))
  long = results["sets"].get("long_horizon")
  if long is not None:
    l = long["learned"]
    stable = l["diverged"] == 0 and l["ends_above_start"] == 0
    out.append((f"stable at {long['horizon']} steps (no divergence, no task ends above its "
                "initial loss)", stable,
                f"diverged {l['diverged']}/{n}, ended above start {l['ends_above_start']}/{n}"))
  return out


def checkpoint_quality(config, workdir: str | pathlib.Path) -> list[dict]:
  """For every kept checkpoint: its meta-training wall time (from ``metrics.jsonl``) and the
  in-family wins against Adam at each of ``eval.report_lrs`` (cached baselines reused)."""
  from metalearn import reporting  # pylint: disable=g-import-not-at-top
  from metalearn.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  from metalearn import train as train_lib  # pylint: disable=g-import-not-at-top
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  from metalearn import experiment as experiment_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.validate(config)
  workdir = pathlib.Path(workdir)
  exp = experiment_lib.build(config)
  rule = exp.learner.rule
  family, T = evaluation_sets(config, exp.family)["in_family"]
  seconds = reporting.train_seconds_by_step(workdir)
  checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints, read_only=True)
  target = train_lib.state_template(exp, config.seed)
  rows = []
  key = jax.random.fold_in(base.eval_key(config, STREAM), 0)
  for step in checkpointer.steps():
    state = checkpointer.restore(step, target)
    s = evaluate_set(config, jax.device_put(state.theta), rule, family, T, key, workdir / "baselines")
    row = {"step": step, "train_seconds": seconds.get(step),
           "mean_train": s["learned"]["mean_train"]}
    for lr in config.eval.report_lrs:
      row[f"wins_vs_adam_{lr:g}"] = s["baselines"]["adam"]["per_lr"][f"{lr:g}"][
          "learned_wins_final_valid"]
    rows.append(row)
  checkpointer.close()
  return rows


def _check(config) -> None:
  variants = TASKS.get(config.task.name).variants
  for name in config.eval.ood:
    if name != "long_horizon" and name not in variants:
      raise ConfigError(f"config key 'eval.ood' names {name!r}, which task "
                        f"{config.task.name!r} does not offer; it offers "
                        f"{list(variants) + ['long_horizon']}")
  if not set(config.eval.report_lrs) <= set(config.eval.lrs):
    raise ConfigError(f"config key 'eval.report_lrs' = {tuple(config.eval.report_lrs)} must be "
                      f"step sizes of eval.lrs ({tuple(config.eval.lrs)})")


base.register(
    name="optimizer", doc="a learned optimizer beside tuned Adam and SGD on held-out training "
    "tasks", evaluate=evaluate, report=format_report, plots=_plots, title=_title,
    families=("training",), stream=STREAM, check=_check,
    options=dict(
        num_tasks=Option(16, ge=2, doc="held-out tasks per evaluation set"),
        num_tuning_tasks=Option(8, ge=1, doc="tasks the baselines' step size is tuned on"),
        baselines=Option(("adam", "sgd_momentum"), choices=tuple(BASELINES),
                         doc="hand-designed optimizers"),
        lrs=Option((1e-4, 3.2e-4, 1e-3, 3.2e-3, 1e-2, 3.2e-2, 1e-1), gt=0, length=(1, None),
                   doc="the baselines' step-size grid"),
        ood=Option(("wider", "deeper", "other_data", "long_horizon"), element=str,
                   doc="out-of-family sets: the task's variants, or 'long_horizon'"),
        horizon_multiplier=Option(5, ge=1, doc="long_horizon's horizon over the trained one"),
        valid_batches=Option(8, ge=1, doc="fresh batches of the final validation loss"),
        report_lrs=Option((1e-3, 3.2e-3), gt=0, doc="Adam step sizes the bars compare with")))
