r"""Table and plots of ``curriculum_icl``: who sets the difficulty, and how fast the learner gets there.

  python experiments/curriculum_report.py --workdirs=/tmp/none_s0,/tmp/garg_s0,/tmp/alp_gmm_s0 \
    --out=results/curriculum_icl_small --command="launch/reproduce/curriculum_icl.sh small"

Reads each workdir's ``config.json`` and ``metrics.jsonl`` (``meta_train.py`` with
``monitor.num_tasks`` > 0: the full task's error on fixed prompts at every log). The target
error is what training on the full task without a curriculum (``none``) reaches at the end
of its run, per seed; for every method the table gives the first logged step at which its
monitored error is at or below that target ("steps to reach the same error"), its final and
best monitored error, and the meta-training time. Writes ``OUT.md``, ``OUT.csv`` and ``OUT.png``
(monitored error vs step per method; the teacher's chosen difficulty vs step).
"""

import json
import pathlib

import numpy as np

from metalearn import evaluators, plots, reporting



def method_of(config: dict) -> str:
  """The difficulty setter of a run: ``none``, ``garg`` or the teacher's name."""
  if config["curriculum"]["name"]:
    return config["curriculum"]["name"]
  return "garg" if config["task"]["curriculum"] else "none"


def load_run(workdir: pathlib.Path, metric: str) -> dict:
  """``{method, seed, steps, error, dims, points, seconds}`` of one run."""
  config = json.loads((workdir / "config.json").read_text())
  path = workdir / "metrics.jsonl"
  if not path.exists():
    raise FileNotFoundError(f"{path} is missing: run meta_train.py in {workdir} first")
  rows = {r["step"]: r for r in map(json.loads, path.read_text().splitlines())}  # last wins
  rows = [rows[s] for s in sorted(rows)]
  if metric not in rows[-1]:
    raise KeyError(f"{path} has no {metric!r}: the run needs monitor.num_tasks > 0")
  t = config["task"]
  task = lambda r, i, n, lo: (lo + np.round(r[f"teacher_task_{i}"] * (n - lo))
                              if f"teacher_task_{i}" in r else np.nan)
  return {"method": method_of(config), "seed": config["seed"], "workdir": str(workdir),
          "steps": np.array([r["step"] for r in rows]),
          "error": np.array([r[metric] for r in rows]),
          "dims": np.array([task(r, 0, t["dim"], 1) for r in rows]),
          "points": np.array([task(r, 1, t["num_points"], 2) for r in rows]),
          "seconds": reporting.train_seconds_by_step(workdir).get(int(rows[-1]["step"]))}


def steps_to_reach(run: dict, target: float) -> int | None:
  """The first logged step whose error is at or below ``target`` (None: never)."""
  hit = np.nonzero(run["error"] <= target)[0]
  return int(run["steps"][hit[0]]) if hit.size else None


def summarise(runs: list[dict]) -> list[dict]:
  """One row per method: mean over seeds of the steps to reach the final error of the run
  without a curriculum of the same seed (runs that never reach it count as not reached; the
  mean is over those that do), final and best error."""
  targets = {r["seed"]: r["error"][-1] for r in runs if r["method"] == "none"}
  if not targets:
    raise ValueError("no run without a curriculum (teacher=none) among the workdirs: it sets "
                     "the target error")
  out = []
  for method in dict.fromkeys(r["method"] for r in runs):
    mine = [r for r in runs if r["method"] == method and r["seed"] in targets]
    reach = [steps_to_reach(r, targets[r["seed"]]) for r in mine]
    hit = [s for s in reach if s is not None]
    near_all = [steps_to_reach(r, 1.1 * targets[r["seed"]]) for r in mine]
    near = [s for s in near_all if s is not None]
    # per seed, an unreached run shown as censored at its last step (">N")
    per_seed = ", ".join(str(s) if s is not None else f">{int(r['steps'][-1])}"
                         for s, r in zip(near_all, mine))
    out.append({"method": method, "seeds": len(mine),
                "reached": f"{len(hit)}/{len(mine)}",
                "steps_to_target": float(np.mean(hit)) if hit else float("nan"),
                "reached_within_10pct": f"{len(near)}/{len(mine)}",
                "steps_to_within_10pct": float(np.mean(near)) if near else float("nan"),
                "steps_to_within_10pct_per_seed": per_seed,
                "final_error": float(np.mean([r["error"][-1] for r in mine])),
                "best_error": float(np.mean([r["error"].min() for r in mine])),
                "target": float(np.mean([targets[r["seed"]] for r in mine])),
                "train_seconds": float(np.mean([r["seconds"] or np.nan for r in mine]))})
  return out


def _plot(runs: list[dict], path: pathlib.Path, metric: str) -> None:
  plt = plots.pyplot()
  fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
  colors = {}
  for r in runs:
    label = None if r["method"] in colors else r["method"]  # one legend entry per method
    c = colors.setdefault(r["method"], f"C{len(colors)}")
    ax.plot(r["steps"], r["error"], color=c, label=label, lw=1.2)
    if not np.all(np.isnan(r["dims"])):
      bx.plot(r["steps"], r["dims"], color=c, label=label and f"{label}: dims", lw=1.2)
      bx.plot(r["steps"], r["points"], color=c, ls="--", lw=1.0,
              label=label and f"{label}: points")
  ax.set(xlabel="outer step", ylabel=f"full-task error ({metric})", yscale="log",
         title="error on the full task (d, all points)")
  bx.set(xlabel="outer step", ylabel="mean difficulty chosen",
         title="teachers' difficulty (solid: dimension, dashed: points)")
  ax.legend(fontsize=8)
  bx.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write(runs: list[dict], out: pathlib.Path, command: str, metric: str) -> list[dict]:
  """Writes OUT.md / .csv / .png; returns the summary rows."""
  rows = summarise(runs)
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  _plot(runs, out.with_suffix(".png"), metric)
  config = json.loads((pathlib.Path(runs[0]["workdir"]) / "config.json").read_text())
  t, m = config["task"], config["model"]
  fmt = lambda v: "—" if v != v else f"{v:.0f}"
  lines = [
      "# curriculum_icl: a learning-progress teacher in place of Garg et al.'s curriculum", "",
      f"In-context linear regression, d = {t['dim']}, {t['num_points']} points; transformer "
      f"width {m['width']}, {m['num_layers']} layers; batch {config['meta_batch_size']}, "
      f"{config['num_steps']} outer steps; objective `{config['objective']}`. Error: "
      f"`{metric}` (normalised squared error on {config['monitor']['num_tasks']} fixed prompts "
      "of the full task, logged every "
      f"{config['log_every']} steps). Target: the final error of training on the full task "
      "without a curriculum (`none`, same seed): the steps each method needs to reach it.", "",
      "| method | seeds | reached target | steps to target | within 10% | steps to within 10% "
      "(per seed) | final error | best error | target | train s |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['method']} | {r['seeds']} | {r['reached']} | "
                 f"{fmt(r['steps_to_target'])} | {r['reached_within_10pct']} | "
                 f"{r['steps_to_within_10pct_per_seed']} | {r['final_error']:.4f} | "
                 f"{r['best_error']:.4f} | {r['target']:.4f} | {fmt(r['train_seconds'])} |")
  lines += ["", f"Command: `{command}`" if command else "",
            f"Seeds: {sorted({r['seed'] for r in runs})}. Report written on: "
            f"{evaluators.hardware()} (each run's log.txt names the devices it trained on).",
            f"Plot: {out.with_suffix('.png').name}"]
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")
  return rows
