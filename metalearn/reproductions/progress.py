r"""Table and plot of ``progress_vs_success``: what rewarding progress over textbooks buys.

  python experiments/progress_report.py --workdirs=/tmp/p_s0,/tmp/p_s1,/tmp/s_s0,/tmp/s_s1 \
    --out=results/progress_vs_success_small --command="launch/reproduce/progress_vs_success.sh small"

Reads each workdir's ``config.json`` and ``eval.json`` (``meta_train.py`` on a textbook task,
evaluated at its end by :mod:`metalearn.evaluators.textbook`: held-out books read in order).
Runs are grouped into conditions by (learner, objective, teacher); per condition and metric,
the mean over seeds with a 95% confidence half-width (Student t over seeds) of the book-level
summaries: ``area`` (mean query loss over the whole book's curve; lower is better), ``final``
(the curve's last point; lower), ``forward_transfer`` (higher) and ``forgetting`` (lower). The
winner of each metric is the condition with the better mean; the table says when the
intervals of the two best overlap (no clear winner at this number of seeds). Writes
``OUT.md``, ``OUT.csv`` and ``OUT.png``.
"""

import json
import pathlib

import numpy as np

from metalearn import evaluators, plots
from metalearn import reporting


# metric -> True when higher is better
METRICS = {"area": False, "final": False, "forward_transfer": True, "forgetting": False}


def condition_of(config: dict) -> str:
  """A run's condition: how it was meta-trained."""
  teacher = config["curriculum"]["name"]
  books = config["learner"]["name"] in ("sequential", "oml")
  where = ((f"books, {teacher} teacher" if teacher else "whole books, no teacher") if books
           else "single chapters, uniform")
  return f"{config['learner']['name']} / {config['objective']['name']} / {where}"


def load_run(workdir: pathlib.Path) -> dict:
  """``{condition, seed, summary: {metric: value}, curve}`` of one evaluated run."""
  for name in ("config.json", "eval.json"):
    if not (workdir / name).exists():
      raise FileNotFoundError(f"{workdir / name} is missing: run meta_train.py (eval.at_end) "
                              "in that workdir first")
  config = json.loads((workdir / "config.json").read_text())
  ev = json.loads((workdir / "eval.json").read_text())
  if ev["metric"] != "mse":
    raise ValueError(f"{workdir}: this report ranks loss metrics (lower is better); the run's "
                     f"metric is {ev['metric']!r}. Use textbook_regression runs")
  meta = ev["methods"]["meta"][ev["metric"]]
  return {"condition": condition_of(config), "seed": config["seed"], "metric": ev["metric"],
          "summary": {k: float(meta["summary"][k]) for k in METRICS},
          "curve": np.asarray(meta["curve"], float), "hardware": ev["hardware"],
          "num_books": ev["num_books"], "config": config}


def mean_ci(values: list[float]) -> tuple[float, float]:
  """Mean and 95% half-width (Student t, n - 1 degrees of freedom; NaN for one seed)."""
  v = np.asarray(values, float)
  if v.size < 2:
    return float(v.mean()), float("nan")
  mean, half = evaluators.mean_ci95(v)
  return float(mean), float(half)


def summarise(runs: list[dict]) -> tuple[list[dict], dict]:
  """Rows per condition (mean, ci per metric) and, per metric, the winner and whether the two
  best intervals overlap."""
  rows = []
  for cond in dict.fromkeys(r["condition"] for r in runs):
    mine = [r for r in runs if r["condition"] == cond]
    row = {"condition": cond, "seeds": len(mine)}
    for m in METRICS:
      row[m], row[f"{m}_ci95"] = mean_ci([r["summary"][m] for r in mine])
    rows.append(row)
  winners = {}
  for m, higher in METRICS.items():
    ranked = sorted(rows, key=lambda r: -r[m] if higher else r[m])
    overlap = len(ranked) > 1 and not (
        abs(ranked[0][m] - ranked[1][m]) > ranked[0][f"{m}_ci95"] + ranked[1][f"{m}_ci95"])
    single = any(r["seeds"] < 2 for r in ranked[:2])
    winners[m] = (ranked[0]["condition"], "one seed: no interval" if single else
                  "the two best intervals overlap: not separated at this number of seeds"
                  if overlap else "")
  return rows, winners


def _plot(runs: list[dict], path: pathlib.Path) -> None:
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(7, 4))
  for i, cond in enumerate(dict.fromkeys(r["condition"] for r in runs)):
    curves = np.stack([r["curve"] for r in runs if r["condition"] == cond])
    mean = curves.mean(0)
    ax.plot(np.arange(mean.size), mean, color=f"C{i}", label=cond)
    if curves.shape[0] > 1:
      half = evaluators.mean_ci95(curves)[1]
      ax.fill_between(np.arange(mean.size), mean - half, mean + half, color=f"C{i}", alpha=0.15)
  ax.set(xlabel="exercises read", ylabel=f"{runs[0]['metric']} over chapters read so far",
         yscale="log", title="reading held-out books (mean over seeds, 95% CI)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write(runs: list[dict], out: pathlib.Path, command: str) -> tuple[list[dict], dict]:
  """Writes OUT.md / .csv / .png; returns the rows and winners."""
  rows, winners = summarise(runs)
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  _plot(runs, out.with_suffix(".png"))
  c = runs[0]["config"]
  t = c["task"]
  fmt = lambda v, ci: f"{v:.3f}" + ("" if ci != ci else f" ± {ci:.3f}")
  lines = [
      "# progress_vs_success: rewarding progress over textbooks vs final loss on single tasks",
      "", f"Held-out compositional-regression books ({t['num_chapters']} chapters x "
      f"{t['exercises_per_chapter']} exercises of {t['batch_size']} points; "
      f"{runs[0]['num_books']} books per run), read in order by SGD from each run's "
      f"meta-learned start. Metric: query {runs[0]['metric']}; mean over seeds ± 95% CI "
      "(Student t). area / final / forgetting: lower is better; forward transfer: higher.", "",
      "| condition | seeds | area | final | forward transfer | forgetting |",
      "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['condition']} | {r['seeds']} | " + " | ".join(
        fmt(r[m], r[f"{m}_ci95"]) for m in METRICS) + " |")
  lines += ["", "Winner per metric:", ""]
  for m, (cond, caveat) in winners.items():
    lines.append(f"* {m}: {cond}" + (f" ({caveat})" if caveat else ""))
  base = next((r for r in rows if "single chapters" in r["condition"]), None)
  if base is not None:
    lines += ["", f"Against `{base['condition']}` (success on single tasks): better (+) or "
              "worse (-), and whether the 95% intervals are apart:", ""]
    for r in (r for r in rows if r is not base):
      parts = []
      for m, higher in METRICS.items():
        gain = (r[m] - base[m]) if higher else (base[m] - r[m])
        apart = abs(r[m] - base[m]) > r[f"{m}_ci95"] + base[f"{m}_ci95"]
        verdict = ("one seed" if min(r["seeds"], base["seeds"]) < 2 else
                   "apart" if apart else "overlap")
        parts.append(f"{m} {gain:+.3f} ({verdict})")
      lines.append(f"* {r['condition']}: " + ", ".join(parts))
  lines += ["", f"Command: `{command}`" if command else "",
            f"Seeds: {sorted({r['seed'] for r in runs})}; meta-training: {c['num_steps']} outer "
            f"steps, meta-batch {c['meta_batch_size']}, MLP {tuple(c['model']['hidden'])}. "
            f"Hardware: {runs[0]['hardware']}.", f"Plot: {out.with_suffix('.png').name}"]
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")
  return rows, winners
