"""Collects ``eval.json`` files of several runs into one table beside published numbers.

Runs are grouped by learner and task setting: ``(learner, K)`` for regression, ``(learner,
N, K)`` for N-way K-shot classification. Per group: the mean over seeds of each seed's mean
query metric, with the mean of the per-seed 95% task-sampling half-widths (every seed is
evaluated on the same tasks, so the seeds' errors are not independent and do not shrink as
``1/sqrt(S)``); the spread across seeds is reported separately (``seed std``). Accuracies are
shown in percent.
"""

import csv
import io
import json
import pathlib
from typing import Iterable

import numpy as np


def _key(result: dict) -> tuple:
  task = result.get("task", {})
  if task.get("name") == "few_shot":
    return (result["learner"], task["num_ways"], task["num_support"])
  return (result["learner"], result["num_support"])


def train_seconds_by_step(workdir: pathlib.Path) -> dict[int, float]:
  """Meta-training wall time at each logged step, from metrics.jsonl (cumulative sum over
  logged intervals of steps / rate; compilation not included)."""
  path = workdir / "metrics.jsonl"
  out, total, last = {}, 0.0, 0
  if not path.exists():
    return out
  for line in path.read_text().splitlines():
    row = json.loads(line)
    total += max(row["step"] - last, 0) / row["steps_per_sec"]  # a resumed run re-logs
    last = max(last, row["step"])
    out[row["step"]] = total
  return out


def _train_seconds(workdir: pathlib.Path) -> float | None:
  """Meta-training time from metrics.jsonl (sum over logged intervals of steps / rate)."""
  by_step = train_seconds_by_step(workdir)
  return max(by_step.values()) if by_step else None


def collect(workdirs: Iterable[pathlib.Path]) -> list[dict]:
  """One row per group (see the module docstring), aggregated over the seeds found."""
  groups: dict[tuple, list[tuple[pathlib.Path, dict]]] = {}
  for workdir in map(pathlib.Path, workdirs):
    path = workdir / "eval.json"
    if not path.exists():
      raise FileNotFoundError(f"{path} is missing: evaluate the run first "
                              f"(python experiments/evaluate.py ... --workdir={workdir})")
    result = json.loads(path.read_text())
    groups.setdefault(_key(result), []).append((workdir, result))
  rows = []
  for key, runs in sorted(groups.items(), key=lambda g: (g[0][1:], g[0][0])):
    results = [r for _, r in runs]
    metric = results[0].get("metric", "mse")
    steps = results[0]["report_steps"]
    meta = lambda r, field: [r["methods"]["meta"][field][t] for t in steps]
    means = np.array([meta(r, metric) for r in results])
    cis = np.array([meta(r, "ci95") for r in results])
    diverged = np.array([meta(r, "num_diverged") for r in results]).sum(0)
    row = {
        "key": key, "learner": key[0], "setting": key[1:], "metric": metric,
        "task": results[0].get("task", {"name": "sinusoid"}),
        "seeds": sorted(r["seed"] for r in results),
        "tasks_per_seed": results[0]["num_tasks"], "steps": steps,
        "mean": means.mean(0).tolist(), "ci95": cis.mean(0).tolist(),
        "hardware": sorted({r.get("hardware", "not recorded") for r in results}),
        "seed_std": (means.std(0, ddof=1) if len(results) > 1 else np.zeros(len(steps))).tolist(),
        "num_diverged": diverged.tolist(), "checkpoint_step": results[0]["checkpoint_step"],
        "train_minutes": [None if s is None else s / 60 for s in
                          (_train_seconds(w) for w, _ in runs)],
    }
    if all("pretrained" in r["methods"] for r in results):
      row["pretrained"] = np.mean([r["methods"]["pretrained"][metric] for r in results],
                                  axis=0).tolist()
    rows.append(row)
  return rows


def _fmt(metric: str, value: float) -> str:
  return f"{100 * value:.1f}" if metric == "accuracy" else f"{value:.3f}"


def write(rows: list[dict], published: dict, references: dict[str, str], out: pathlib.Path,
          title: str, command: str, missing: Iterable[str] = (), bars: dict | None = None
          ) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes ``out.md`` and ``out.csv``; returns their paths.

  ``published`` and ``bars`` (minimum acceptable results, in the table's units) are keyed like
  the rows: ``(learner, K)`` or ``(learner, N, K)``.
  """
  out.parent.mkdir(parents=True, exist_ok=True)
  bars = bars or {}
  metric = rows[0]["metric"]
  classification = metric == "accuracy"
  unit = "accuracy %" if classification else metric.upper()
  setting_cols = ["N", "K"] if classification else ["K"]
  has_pre = all("pretrained" in r for r in rows)
  # Rows may report different inner steps (ProtoNets: 0 only); columns are their union.
  steps = sorted({t for r in rows for t in r["steps"]})
  # Published few-shot accuracies are after the test-time inner steps (each row's last
  # reported); regression numbers after one step.
  report = {id(r): (len(r["steps"]) - 1 if classification or 1 not in r["steps"]
                    else r["steps"].index(1)) for r in rows}
  report_steps = {r["steps"][report[id(r)]] for r in rows}
  at = (f"{min(report_steps)} step{'s' * (min(report_steps) != 1)}" if len(report_steps) == 1
        else "each row's last step")
  head = (["learner"] + setting_cols + ["seeds"] +
          [f"{unit} {t} step{'s' * (t != 1)}" for t in steps] + [f"seed std ({at})"] +
          ([f"pretrained ({at})"] if has_pre else []) +
          (["train min"] if classification else []) + [f"published ({at})"] +
          (["bar"] if bars else []))
  hardware = sorted({h for r in rows for h in r["hardware"]})
  task = rows[0]["task"]
  where = (f"{task.get('dataset')} ({task.get('protocol')} protocol, {task.get('split')} "
           "classes)" if classification else "fresh tasks")
  md = [f"# {title}", "", f"Command: `{command}`", "",
        "Hardware: " + "; ".join(hardware) + ".", "",
        f"Query {unit} on {where} (mean over seeds ± 95% CI from task sampling); "
        f"{rows[0]['tasks_per_seed']} tasks per seed; outer steps: "
        + ", ".join(sorted({str(r['checkpoint_step']) for r in rows})) + ".",
        "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  buf = io.StringIO()
  writer = csv.writer(buf)
  writer.writerow(["learner"] + [c.lower() for c in setting_cols] + ["seeds"] +
                  [f"{metric}_{t}" for t in steps] + [f"ci95_{t}" for t in steps] +
                  ["report_step", "seed_std"] + (["pretrained"] if has_pre else []) +
                  (["train_minutes"] if classification else []) + ["published"] +
                  (["bar"] if bars else []))
  for r in rows:
    i = report[id(r)]
    n = r["tasks_per_seed"] * len(r["seeds"])
    at_step = {t: j for j, t in enumerate(r["steps"])}
    cells, csv_means, csv_cis = [], [], []
    for t in steps:
      j = at_step.get(t)
      if j is None:
        cells.append("—")
        csv_means.append("")
        csv_cis.append("")
        continue
      m, c, d = r["mean"][j], r["ci95"][j], r["num_diverged"][j]
      cells.append(f"{_fmt(metric, m)} ± {_fmt(metric, c)}" if not d
                   else f"diverged on {d}/{n} tasks")
      csv_means.append(f"{m:.5f}")
      csv_cis.append(f"{c:.5f}")
    pub = published.get(r["key"], "—")
    minutes = [m for m in r["train_minutes"] if m is not None]
    train_min = f"{np.mean(minutes):.1f}" if minutes else "—"
    bar = bars.get(r["key"])
    bar_cell = ("—" if bar is None else
                f"≥ {bar} ({'met' if 100 * r['mean'][i] >= bar else 'NOT met'})")
    extra = ([_fmt(metric, r["pretrained"][i])] if has_pre else []) + (
        [train_min] if classification else [])
    md.append("| " + " | ".join([r["learner"], *map(str, r["setting"]), str(len(r["seeds"]))]
                                 + cells + [_fmt(metric, r["seed_std"][i])] + extra + [pub]
                                 + ([bar_cell] if bars else [])) + " |")
    writer.writerow([r["learner"], *r["setting"], " ".join(map(str, r["seeds"]))] +
                    csv_means + csv_cis + [r["steps"][i], f"{r['seed_std'][i]:.5f}"] +
                    ([f"{r['pretrained'][i]:.5f}"] if has_pre else []) +
                    ([train_min] if classification else []) + [pub] +
                    ([bar_cell] if bars else []))
  missing = list(missing)
  if missing:
    md += ["", f"**Missing runs (failed or unfinished, not in the table): {', '.join(missing)}.**"]
  md += ["", "References:", ""] + [f"- [{key}] {text}" for key, text in references.items()]
  md_path, csv_path = out.with_suffix(".md"), out.with_suffix(".csv")
  md_path.write_text("\n".join(md) + "\n")
  csv_path.write_text(buf.getvalue())
  return md_path, csv_path


def collect_sweep(root: pathlib.Path) -> list[dict]:
  """Rows of a sweep (``launch/sweep.py``): runs under ``root`` with ``sweep_point.json`` and
  ``eval.json``, grouped by grid point; the primary metric after the last reported inner
  step."""
  groups: dict[str, list[tuple[dict, dict]]] = {}
  for point_file in sorted(pathlib.Path(root).glob("*/sweep_point.json")):
    result_file = point_file.parent / "eval.json"
    if not result_file.exists():
      continue
    point = json.loads(point_file.read_text())
    groups.setdefault(json.dumps(point["point"], sort_keys=True), []).append(
        (point, json.loads(result_file.read_text())))
  rows = []
  for key, runs in groups.items():
    results = [r for _, r in runs]
    metric = results[0].get("metric", "mse")
    step = results[0]["report_steps"][-1]
    means = np.array([r["methods"]["meta"][metric][step] for r in results])
    cis = np.array([r["methods"]["meta"]["ci95"][step] for r in results])
    rows.append({"point": json.loads(key), "seeds": sorted(p["seed"] for p, _ in runs),
                 "metric": metric, "step": step, "mean": float(means.mean()),
                 "ci95": float(cis.mean()),
                 "seed_std": float(means.std(ddof=1)) if len(means) > 1 else 0.0,
                 "num_tasks": results[0]["num_tasks"]})
  return rows


def write_sweep(rows: list[dict], out: pathlib.Path, missing: Iterable[str] = ()
                ) -> tuple[pathlib.Path, pathlib.Path]:
  """``out.md`` / ``out.csv`` of :func:`collect_sweep` rows, best first; returns the paths."""
  keys = sorted({k for r in rows for k in r["point"]})
  metric = rows[0]["metric"]
  higher_better = metric == "accuracy"
  rows = sorted(rows, key=lambda r: -r["mean"] if higher_better else r["mean"])
  unit = f"{metric} %" if higher_better else metric
  head = keys + ["seeds", f"{unit} (mean ± 95% CI)", "seed std", "inner steps", "tasks/seed"]
  md = [f"# Sweep ({'higher' if higher_better else 'lower'} is better)", "",
        "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  buf = io.StringIO()
  writer = csv.writer(buf)
  writer.writerow(keys + ["seeds", metric, "ci95", "seed_std", "inner_steps", "tasks_per_seed"])
  for r in rows:
    cells = [str(r["point"].get(k, "")) for k in keys]
    md.append("| " + " | ".join(cells + [
        " ".join(map(str, r["seeds"])),
        f"{_fmt(metric, r['mean'])} ± {_fmt(metric, r['ci95'])}",
        _fmt(metric, r["seed_std"]), str(r["step"]), str(r["num_tasks"])]) + " |")
    writer.writerow(cells + [" ".join(map(str, r["seeds"])), f"{r['mean']:.5f}",
                             f"{r['ci95']:.5f}", f"{r['seed_std']:.5f}", r["step"],
                             r["num_tasks"]])
  missing = list(missing)
  if missing:
    md += ["", f"**Failed runs (not in the table): {', '.join(missing)}.**"]
  md_path, csv_path = out.with_suffix(".md"), out.with_suffix(".csv")
  md_path.write_text("\n".join(md) + "\n")
  csv_path.write_text(buf.getvalue())
  return md_path, csv_path


def short_path(path: str) -> str:
  """A run's file or directory as ``PARENT/NAME`` (``RUN/model``), for tables that should not
  carry one machine's absolute paths."""
  p = pathlib.Path(path)
  return f"{p.parent.name}/{p.name}"


def write_rows_csv(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
  """``rows`` (dicts with the same keys, in order) as a CSV table with a header; creates the
  directory."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  return path
