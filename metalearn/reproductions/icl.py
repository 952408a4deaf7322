"""Tables, plots and bars of the in-context-learning reproductions from their workdirs
(``experiments/icl_report.py``; ``launch/reproduce/icl_*.sh``, ``gpicl.sh``).

:func:`write` reads each workdir's ``eval.json`` and ``config.json`` (written by
``meta_train.py``) and writes ``OUT.md`` (table, bars, run details), ``OUT.csv``, ``OUT.json``
and ``OUT.png``. Experiments: ``linear_regression`` (Garg et al. 2022), ``gd`` (von Oswald et
al. 2023), ``task_diversity`` (Raventos et al. 2023), ``gpicl`` (Kirsch et al. 2022).
"""


import csv
import json
import pathlib

import numpy as np

from metalearn import plots, reporting

EXPERIMENTS = ("linear_regression", "gd", "task_diversity", "gpicl")

# von Oswald et al. 2023 (d = 10, N = 10, x ~ U(-0.5, 0.5)^d): L = E[(y_hat - y)^2] / 2.
VON_OSWALD = {"zero predictor": 0.42, "GD 1 step": 0.206, "GD 2 steps": 0.157,
              "GD 3 steps": 0.133}


def _load(workdir: str) -> tuple[dict, dict]:
  w = pathlib.Path(workdir)
  for name in ("eval.json", "config.json"):
    if not (w / name).exists():
      raise FileNotFoundError(f"{w / name} is missing: run meta_train.py (with eval.at_end) "
                              "in that workdir first")
  return json.loads((w / "eval.json").read_text()), json.loads((w / "config.json").read_text())


def _mark(ok: bool) -> str:
  return "met" if ok else "NOT met"


def _plot(path, xs, series: dict, xlabel: str, ylabel: str, title: str, logx=False):
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, (mean, ci) in series.items():
    mean, ci = np.asarray(mean), np.asarray(ci)
    ax.plot(xs, mean, marker="o", ms=3, label=name, lw=2.5 if name.startswith("model") else 1.2)
    ax.fill_between(xs, mean - ci, mean + ci, alpha=0.15)
  if logx:
    ax.set_xscale("log", base=2)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def linear_regression(runs, out):
  """One section per function class (and evaluation set); Garg's bars on ``linear``."""
  header, rows, sections, bars = ["class", "set", "method", "k", "nse", "nse_ci95"], [], [], []
  for ev, cfg in runs:
    fc, d, n = cfg["task"]["function_class"], cfg["task"]["dim"], cfg["task"]["num_points"]
    for set_name, entry in ev["sets"].items():
      m = entry["methods"]
      names = list(m)
      rows += [[fc, set_name, name, k, m[name]["nse"][k], m[name]["nse_ci95"][k]]
               for name in names for k in range(n)]
      sections.append(f"**{fc}, {set_name}** (normalised squared error)\n\n" + _md_table(
          ["k"] + names, [[k] + [m[name]["nse"][k] for name in names] for k in range(n)]))
    if fc != "linear":
      continue
    m = ev["sets"]["in_distribution"]["methods"]
    model, ls = np.asarray(m["model"]["nse"]), np.asarray(m["least_squares"]["nse"])
    gap = np.max(np.abs(model - ls)[:d - 1])
    bars.append(f"NSE within 0.03 of least squares for k <= d - 2 = {d - 2}: max gap {gap:.3f} "
                f"({_mark(gap < 0.03)})")
    if 2 * d < n:
      bars.append(f"NSE <= 0.05 at k = 2d = {2 * d}: {model[2 * d]:.3f} "
                  f"({_mark(model[2 * d] <= 0.05)})")
    for name in ("averaging", "knn_3"):
      if name in m:
        ok = np.all(model[2:] < np.asarray(m[name]["nse"])[2:])
        bars.append(f"below {name} for every k >= 2 ({_mark(ok)})")
    _plot(out.with_suffix(".png"), np.arange(n),
          {k: (v["nse"], v["nse_ci95"]) for k, v in m.items()}, "in-context examples k",
          "normalised squared error", f"linear regression, d = {d}")
  return header, rows, "\n\n".join(sections), bars, {}


def gd(runs, out):
  header = ["layers", "L model", "L GD (same steps)", "L GD 1 step", "abs(L model - L GD 1)",
            "cosine(model, GD 1)"]
  rows, bars = [], []
  for ev, cfg in sorted(runs, key=lambda r: r[1]["model"]["num_layers"]):
    L = cfg["model"]["num_layers"]
    entry = ev["sets"]["in_distribution"]
    m, var = entry["methods"], cfg["task"]["dim"] / 12.0  # x ~ U(-0.5, 0.5): Var(y) = d / 12
    loss = lambda name: m[name]["nse"][-1] * var / 2  # von Oswald's L = MSE / 2, at k = N - 1
    if f"gd_{L}" not in m:
      raise ValueError(f"the {L}-layer run has no gd_{L} baseline: evaluate it with "
                       f"eval.gd_steps including {L}")
    gd_same = loss(f"gd_{L}")
    rows.append([L, loss("model"), gd_same, loss("gd_1"), abs(loss("model") - loss("gd_1")),
                 entry["alignment"]["cosine"]])
    if L == 1:
      bars.append(f"1 layer: |L_LSA - L_1-step-GD| = {rows[-1][4]:.4f} < 0.005 "
                  f"({_mark(rows[-1][4] < 0.005)})")
      bars.append(f"1 layer: cosine of implied update with GD's = {rows[-1][5]:.4f} > 0.99 "
                  f"({_mark(rows[-1][5] > 0.99)})")
    bars.append(f"{L} layer(s): L = {rows[-1][1]:.4f} at or below {L}-step GD's {gd_same:.4f} "
                f"(within 0.005) ({_mark(rows[-1][1] <= gd_same + 0.005)})")
  table = _md_table(header, rows) + "\n\nvon Oswald et al. reference losses: " + ", ".join(
      f"{k} {v}" for k, v in VON_OSWALD.items())
  runs_by_l = sorted(runs, key=lambda r: r[1]["model"]["num_layers"])
  ev0, cfg0 = runs_by_l[0]
  m0 = ev0["sets"]["in_distribution"]["methods"]
  series = {f"model ({r[1]['model']['num_layers']} layer)": (
      r[0]["sets"]["in_distribution"]["methods"]["model"]["nse"],
      r[0]["sets"]["in_distribution"]["methods"]["model"]["nse_ci95"]) for r in runs_by_l}
  series.update({k: (v["nse"], v["nse_ci95"]) for k, v in m0.items() if k != "model"})
  _plot(out.with_suffix(".png"), np.arange(cfg0["task"]["num_points"]), series,
        "in-context examples k", "normalised squared error", "linear self-attention vs GD")
  return header, rows, table, bars, {}


def task_diversity(runs, out):
  key = lambda r: r[1]["task"]["pool_size"] or 2 ** 40
  runs = sorted(runs, key=key)
  header = ["pool size", "model (pool tasks)", "dMMSE (pool tasks)", "model (new tasks)",
            "ridge (new tasks)", "dMMSE (new tasks)", "closer to"]
  rows, xs, series = [], [], {"model": ([], []), "ridge": ([], []), "dMMSE": ([], [])}
  for ev, cfg in runs:
    M = cfg["task"]["pool_size"]
    if not M:
      continue
    pool, new = (ev["sets"][s]["methods"] for s in ("in_distribution", "gaussian_tasks"))
    last = lambda m, name: (m[name]["nse"][-1], m[name]["nse_ci95"][-1])
    mod, rid, bay = last(new, "model"), last(new, "ridge"), last(new, "bayes")
    closer = "ridge" if abs(mod[0] - rid[0]) < abs(mod[0] - bay[0]) else "dMMSE"
    rows.append([M, last(pool, "model")[0], last(pool, "bayes")[0], mod[0], rid[0], bay[0],
                 closer])
    xs.append(M)
    for name, v in (("model", mod), ("ridge", rid), ("dMMSE", bay)):
      series[name][0].append(v[0])
      series[name][1].append(v[1])
  switch = next((r[0] for r in rows if r[-1] == "ridge"), None)
  bars = [f"transition: the model tracks dMMSE for small pools and ridge from pool size "
          f"{switch} on ({_mark(switch is not None and rows[0][-1] == 'dMMSE')}: first pool "
          "closer to dMMSE, a larger one closer to ridge)"]
  _plot(out.with_suffix(".png"), xs, series, "task pool size M",
        "normalised squared error, new tasks (last position)",
        "task diversity: dMMSE -> ridge", logx=True)
  pooled = [r for r in runs if r[1]["task"]["pool_size"]]
  _curves_panel(out.with_name(out.name + "_curves.png"), pooled, "gaussian_tasks", "nse",
                lambda c: f"M={c['task']['pool_size']}")
  return header, rows, _md_table(header, rows), bars, {"transition_pool_size": switch}


def gpicl(runs, out):
  runs = sorted(runs, key=lambda r: r[1]["task"]["num_tasks"] or 2 ** 40)
  header = ["tasks", "seen accuracy", "unseen accuracy", "logistic regression (unseen)"]
  rows, xs = [], []
  series = {"model, seen tasks": ([], []), "model, unseen tasks": ([], []),
            "logistic regression, unseen": ([], [])}
  for ev, cfg in runs:
    T = cfg["task"]["num_tasks"]
    acc = lambda s, name: (np.mean(ev["sets"][s]["methods"][name]["accuracy"][-5:]),
                           np.mean(ev["sets"][s]["methods"][name]["accuracy_ci95"][-5:]))
    seen, unseen = acc("seen", "model"), acc("unseen", "model")
    lr = (acc("unseen", "logistic_regression")
          if "logistic_regression" in ev["sets"]["unseen"]["methods"] else (np.nan, np.nan))
    rows.append([T, seen[0], unseen[0], lr[0]])
    xs.append(T)
    for name, v in zip(series, (seen, unseen, lr)):
      series[name][0].append(v[0])
      series[name][1].append(v[1])
  gap = [r[1] - r[2] for r in rows]
  bars = [f"memorisation -> generalisation: seen-unseen accuracy gap {gap[0]:.2f} at "
          f"{rows[0][0]} tasks, {gap[-1]:.2f} at {rows[-1][0]} "
          f"({_mark(gap[0] > 0.2 and gap[-1] < 0.05)}: gap > 0.2 with few tasks, < 0.05 "
          "with many)"]
  _plot(out.with_suffix(".png"), xs, series, "number of tasks",
        "accuracy (mean of the last 5 positions)", "GPICL: memorisation -> generalisation",
        logx=True)
  _curves_panel(out.with_name(out.name + "_curves.png"), runs, "unseen", "accuracy",
                lambda c: f"{c['task']['num_tasks']} tasks")
  return header, rows, _md_table(header, rows), bars, {}


def _curves_panel(path, runs, set_name, metric, label):
  """Metric vs in-context examples for the first and last run of a sweep, with baselines."""
  series = {}
  for ev, cfg in (runs[0], runs[-1]):
    for name, m in ev["sets"][set_name]["methods"].items():
      series[f"{name} ({label(cfg)})"] = (m[metric], m[f"{metric}_ci95"])
  n = len(next(iter(series.values()))[0])
  _plot(path, np.arange(n), series, "in-context examples k", metric,
        f"{set_name}: smallest vs largest sweep value")


def _fmt(v):
  return f"{v:.4f}" if isinstance(v, float) else str(v)


def _md_table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  return "\n".join(lines + ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows])


_REPORTS = {"linear_regression": linear_regression, "gd": gd,
            "task_diversity": task_diversity, "gpicl": gpicl}


def write(experiment: str, workdirs: list[str], out, command: str = "") -> str:
  """Writes ``OUT.md`` (table, bars, run details), ``OUT.csv``, ``OUT.json`` and the plots of
  ``experiment`` from the evaluated ``workdirs``; returns the markdown."""
  if experiment not in EXPERIMENTS:
    raise ValueError(f"unknown experiment {experiment!r}; choose from {EXPERIMENTS}")
  runs = [_load(w) for w in workdirs]
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  header, rows, table, bars, extra = _REPORTS[experiment](runs, out)
  with out.with_suffix(".csv").open("w", newline="") as f:
    csv.writer(f).writerows([header] + rows)
  ev0 = runs[0][0]
  seconds = [reporting.train_seconds_by_step(pathlib.Path(w)) for w in workdirs]
  minutes = [max(s.values()) / 60 if s else float("nan") for s in seconds]
  md = [f"# In-context learning: {experiment}", "", f"Command: `{command}`", "",
        table, "", "Bars:", ""] + [f"- {b}" for b in bars] + [
        "", f"Runs: {len(runs)}; meta-training minutes per run: "
        + ", ".join(f"{m:.1f}" for m in minutes),
        f"Seeds: training {sorted({r[1]['seed'] for r in runs})}, evaluation "
        f"{ev0['eval_seed']}; {ev0['num_tasks']} evaluation prompts per set.",
        f"Hardware: {ev0['hardware']}", "", f"Plot: {out.with_suffix('.png').name}"] + (
        [f"Error vs in-context examples: {out.name}_curves.png"]
        if out.with_name(out.name + "_curves.png").exists() else [])
  out.with_suffix(".md").write_text("\n".join(md) + "\n")
  (out.with_suffix(".json")).write_text(json.dumps(
      {"header": header, "rows": rows, "bars": bars, **extra}, indent=2, default=float))
  return "\n".join(md)
