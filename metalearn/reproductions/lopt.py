r"""Writes the learned-optimizer reproduction table from an evaluated workdir.

  python experiments/lopt_report.py --config=experiments/configs/learned_optimizer.py:mlp_lopt,small \
    --workdir=workdirs/learned_optimizer/mlp_lopt_small --out=results/learned_optimizer_small

Reads ``eval.json`` (``experiments/evaluate.py`` or the end of ``meta_train.py`` writes it),
checks the ``small`` bars, evaluates every kept checkpoint in-family for time to quality
(baselines come from the workdir's cache), and writes ``OUT.md`` / ``OUT.json`` and copies the
learning-curve plot to ``OUT.png``. ``OUT.json`` holds every number of the report but not the
per-step mean curves (megabytes for long horizons): those stay in the workdir's ``eval.json``,
drawn in ``OUT.png``.
"""

import json
import pathlib
import shutil

from metalearn import config as config_lib
from metalearn.evaluators import optimizer as lopt_evaluation
from metalearn import reporting


def _without_curves(tree):
  """``tree`` without its ``mean_curve`` entries."""
  if isinstance(tree, dict):
    return {k: _without_curves(v) for k, v in tree.items() if k != "mean_curve"}
  return [_without_curves(v) for v in tree] if isinstance(tree, list) else tree


def write(config, workdir, out, command: str = "") -> str:
  """Writes ``OUT.md``, ``OUT.json`` and ``OUT.png`` of the evaluated ``workdir`` meta-trained
  with ``config`` (validated); returns the markdown."""
  config = config_lib.validate(config)
  workdir, out = pathlib.Path(workdir), pathlib.Path(out)
  if not (workdir / "eval.json").exists():
    raise FileNotFoundError(f"no eval.json in {workdir}: run experiments/evaluate.py first")
  results = json.loads((workdir / "eval.json").read_text())
  checks = lopt_evaluation.bars(results)
  quality = lopt_evaluation.checkpoint_quality(config, workdir)
  seconds = reporting.train_seconds_by_step(workdir)
  out.parent.mkdir(parents=True, exist_ok=True)
  learner = results["learner"]
  if learner == "mlp_lopt":  # small_lopt is mlp_lopt with other hidden widths and features
    learner += f": hidden {tuple(config.learner.hidden)}, {config.learner.features} features"
  lines = [f"# Learned optimizer ({learner}) vs Adam and SGD with momentum", "",
           f"Command: `{command}`" if command else "",
           f"Meta-training: {config.num_steps} outer steps of {config.estimator.name} "
           f"(truncation {config.estimator.truncation_length}, {config.meta_batch_size} "
           f"antithetic pairs, sigma {config.estimator.sigma:g}), horizon "
           f"{config.learner.num_inner_steps}, objective '{config.objective.name}', outer "
           f"{config.optimizer.name} {config.optimizer.learning_rate:g}, seed {config.seed}; "
           f"{max(seconds.values()) / 60 if seconds else float('nan'):.1f} minutes of "
           f"meta-training (checkpoint step {results['checkpoint_step']}).",
           f"Hardware: {results['hardware']}.", "", "## Bars (small)", "",
           "| bar | met | numbers |", "|---|---|---|"]
  lines += [f"| {b} | {'yes' if ok else 'NO'} | {detail} |" for b, ok, detail in checks]
  lines += ["", "## Time to quality (in-family held-out tasks, every kept checkpoint)", "",
            "| checkpoint step | meta-training minutes | learned mean training loss | "
            + " | ".join(f"wins vs Adam {lr:g}" for lr in config.eval.report_lrs) + " |",
            "|---" * (3 + len(config.eval.report_lrs)) + "|"]
  for r in quality:
    minutes = "?" if r["train_seconds"] is None else f"{r['train_seconds'] / 60:.1f}"
    lines.append(f"| {r['step']} | {minutes} | {r['mean_train']:.3f} | " + " | ".join(
        f"{r[f'wins_vs_adam_{lr:g}']}/{results['num_tasks']}"
        for lr in config.eval.report_lrs) + " |")
  lines += ["", "## Every evaluation set", "", lopt_evaluation.format_report(results),
            f"![learning curves]({out.name}.png)", ""]
  out.with_suffix(".md").write_text("\n".join(lines))
  out.with_suffix(".json").write_text(json.dumps(
      {"bars": checks, "time_to_quality": quality, "eval": _without_curves(results)}, indent=2))
  if (workdir / "learning_curves.png").exists():
    shutil.copy(workdir / "learning_curves.png", out.with_suffix(".png"))
  return out.with_suffix(".md").read_text()


