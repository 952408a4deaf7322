r"""Writes the learned-optimizer reproduction table from an evaluated workdir.

  python experiments/lopt_report.py --config=experiments/configs/learned_optimizer.py:mlp_lopt,small \
    --workdir=workdirs/learned_optimizer/mlp_lopt_small --out=results/learned_optimizer_small

Reads ``eval.json`` (``experiments/evaluate.py`` or the end of ``meta_train.py`` writes it),
checks the ``small`` bars, evaluates every kept checkpoint in-family for time to quality
(baselines come from the workdir's cache), and writes ``OUT.md`` / ``OUT.json`` and copies the
learning-curve plot to ``OUT.png``.
"""

import json
import pathlib
import shutil

from absl import app
from absl import flags
from ml_collections import config_flags

from metalearn import config as config_lib
from metalearn.evaluators import optimizer as lopt_evaluation
from metalearn import logs
from metalearn import parallel
from metalearn import reporting

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Evaluated meta-training workdir.")
_OUT = flags.DEFINE_string("out", None, "Output path without suffix.")
_COMMAND = flags.DEFINE_string("command", "", "The command that made the run.")
flags.mark_flags_as_required(["config", "workdir", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  try:
    config = config_lib.validate(_CONFIG.value)
  except config_lib.ConfigError as e:
    raise app.UsageError(str(e)) from e
  parallel.use_compile_options(config.compile)
  workdir, out = pathlib.Path(_WORKDIR.value), pathlib.Path(_OUT.value)
  if not (workdir / "eval.json").exists():
    raise app.UsageError(f"no eval.json in {workdir}: run experiments/evaluate.py first")
  results = json.loads((workdir / "eval.json").read_text())
  checks = lopt_evaluation.bars(results)
  quality = lopt_evaluation.checkpoint_quality(config, workdir)
  seconds = reporting.train_seconds_by_step(workdir)
  out.parent.mkdir(parents=True, exist_ok=True)
  learner = results["learner"]
  if learner == "mlp_lopt":  # small_lopt is mlp_lopt with other hidden widths and features
    learner += f": hidden {tuple(config.learner.hidden)}, {config.learner.features} features"
  lines = [f"# Learned optimizer ({learner}) vs Adam and SGD with momentum", "",
           f"Command: `{_COMMAND.value}`" if _COMMAND.value else "",
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
      {"bars": checks, "time_to_quality": quality, "eval": results}, indent=2))
  if (workdir / "learning_curves.png").exists():
    shutil.copy(workdir / "learning_curves.png", out.with_suffix(".png"))
  print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
  app.run(main)
