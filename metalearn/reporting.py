"""Collects ``eval.json`` files of several runs into one table beside published numbers.

Per (learner, K): the mean over seeds of each seed's mean query MSE, with the mean of the
per-seed 95% task-sampling half-widths (every seed is evaluated on the same tasks, so the
seeds' errors are not independent and do not shrink as ``1/sqrt(S)``); the spread across seeds
is reported separately (``seed std``).
"""

import csv
import io
import json
import pathlib
from typing import Iterable

import numpy as np


def collect(workdirs: Iterable[pathlib.Path]) -> list[dict]:
  """One row per (learner, K), aggregated over the seeds found."""
  groups: dict[tuple[str, int], list[dict]] = {}
  for workdir in workdirs:
    path = pathlib.Path(workdir) / "eval.json"
    if not path.exists():
      raise FileNotFoundError(f"{path} is missing: evaluate the run first "
                              f"(python experiments/evaluate.py ... --workdir={workdir})")
    result = json.loads(path.read_text())
    groups.setdefault((result["learner"], result["num_support"]), []).append(result)
  rows = []
  for (learner, k), results in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
    steps = results[0]["report_steps"]
    means = np.array([[r["methods"]["meta"]["mse"][t] for t in steps] for r in results])
    cis = np.array([[r["methods"]["meta"]["ci95"][t] for t in steps] for r in results])
    diverged = np.array([[r["methods"]["meta"]["num_diverged"][t] for t in steps]
                         for r in results]).sum(0)
    pre = np.array([[r["methods"]["pretrained"]["mse"][t] for t in steps] for r in results])
    rows.append({
        "learner": learner, "k": k, "seeds": sorted(r["seed"] for r in results),
        "tasks_per_seed": results[0]["num_tasks"], "steps": steps,
        "mse": means.mean(0).tolist(),
        "ci95": cis.mean(0).tolist(),
        "hardware": sorted({r.get("hardware", "not recorded") for r in results}),
        "seed_std": (means.std(0, ddof=1) if len(results) > 1 else np.zeros(len(steps))).tolist(),
        "pretrained_mse": pre.mean(0).tolist(), "num_diverged": diverged.tolist(),
        "checkpoint_step": results[0]["checkpoint_step"],
    })
  return rows


def write(rows: list[dict], published: dict, references: dict[str, str], out: pathlib.Path,
          title: str, command: str, missing: Iterable[str] = ()
          ) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes ``out.md`` and ``out.csv``; returns their paths."""
  out.parent.mkdir(parents=True, exist_ok=True)
  steps = rows[0]["steps"]
  head = ["learner", "K", "seeds"] + [f"MSE {t} step{'s' * (t != 1)}" for t in steps] + [
      "seed std (1 step)", "pretrained (1 step)", "published (1 step)"]
  hardware = sorted({h for r in rows for h in r["hardware"]})
  md = [f"# {title}", "", f"Command: `{command}`", "",
        "Hardware: " + "; ".join(hardware) + ".", "",
        "Query MSE on fresh tasks (mean over seeds ± 95% CI from task sampling); "
        f"{rows[0]['tasks_per_seed']} tasks per seed; {rows[0]['checkpoint_step']} outer steps.",
        "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  buf = io.StringIO()
  writer = csv.writer(buf)
  writer.writerow(["learner", "k", "seeds"] + [f"mse_{t}" for t in steps] +
                  [f"ci95_{t}" for t in steps] + ["seed_std_1", "pretrained_1", "published_1"])
  one = steps.index(1) if 1 in steps else 0
  for r in rows:
    n = r["tasks_per_seed"] * len(r["seeds"])
    cells = [f"{m:.3f} ± {c:.3f}" if not d else f"diverged on {d}/{n} tasks"
             for m, c, d in zip(r["mse"], r["ci95"], r["num_diverged"])]
    pub = published.get((r["learner"], r["k"]), "—")
    md.append(f"| {r['learner']} | {r['k']} | {len(r['seeds'])} | " + " | ".join(cells) +
              f" | {r['seed_std'][one]:.3f} | {r['pretrained_mse'][one]:.3f} | {pub} |")
    writer.writerow([r["learner"], r["k"], " ".join(map(str, r["seeds"]))] +
                    [f"{m:.5f}" for m in r["mse"]] + [f"{c:.5f}" for c in r["ci95"]] +
                    [f"{r['seed_std'][one]:.5f}", f"{r['pretrained_mse'][one]:.5f}", pub])
  missing = list(missing)
  if missing:
    md += ["", f"**Missing runs (failed or unfinished, not in the table): {', '.join(missing)}.**"]
  md += ["", "References:", ""] + [f"- [{key}] {text}" for key, text in references.items()]
  md_path, csv_path = out.with_suffix(".md"), out.with_suffix(".csv")
  md_path.write_text("\n".join(md) + "\n")
  csv_path.write_text(buf.getvalue())
  return md_path, csv_path
