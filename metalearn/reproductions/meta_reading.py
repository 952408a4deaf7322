"""Meta-learned reading (``launch/reproduce/lm_meta_reading.sh``): a pretrained LM reads a
chapter about new people in ``T`` LoRA steps; readers are compared on the new people's
questions after ``T`` steps, with the questions about people it knew allowed to drop by at
most ``limit`` (5 points).

* The baseline, plain fine-tuning with Adam, is tuned here (:func:`tune_baseline`): every
  learning rate x replay share of a grid is read on the validation chapters, the cell with the
  most new-people accuracy within the limit is kept, and it is evaluated on the test chapters
  as the few-shot evaluator evaluates a meta-trained reader (the same key, so the same
  chapters and questions). Written to ``WORKDIR/baseline.json``; each validation cell is
  appended to ``WORKDIR/grid.jsonl`` as it is measured, so a killed or repeated tuning reads
  only the cells it lacks.
* Meta-learned readers are ``experiments/meta_train.py`` runs of
  ``experiments/configs/lm/meta_reading.py``; their ``eval.json`` holds the ``meta`` curves.

:func:`write` turns both kinds of workdir into ``OUT.md`` / ``.csv`` / ``.png``: per reader,
mean over seeds with 95% intervals of the new-people accuracy after ``T`` steps, the probe's
accuracy before and after and its drop, the area under the new-people curve, and the bar.
"""

import hashlib
import json
import pathlib

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn import config as config_lib
from metalearn import evaluators
from metalearn import experiment as experiment_lib
from metalearn import plots
from metalearn import reporting
from metalearn.evaluators import few_shot
from metalearn.evaluators.base import sample
from metalearn.reproductions.progress import mean_ci
from metalearn.tasks import TASKS

LIMIT = 0.05  # the largest allowed drop of the known people's accuracy
BAR = 0.15  # the margin a meta-learned reader must beat the tuned baseline by
# Accuracies are float32 means of answer counts, so a drop of exactly the limit (12 of 240
# probe answers: 5 points) can come out a few 1e-9 above it; the limit admits it.
_SLACK = 1e-6


def within_limit(known_drop: float, limit: float = LIMIT) -> bool:
  """The known people's accuracy dropped by at most ``limit`` (float rounding admitted)."""
  return bool(known_drop <= limit + _SLACK)


def score(curves: dict, known_before: float | None = None) -> dict[str, float]:
  """Means over tasks of per-task curves ``{metric: [N, T + 1]}``: the new people's accuracy
  after ``T`` steps and its area (mean over steps ``1..T``), the probe's accuracy before and
  after, and its drop. ``known_before``: the probe's accuracy before reading when the curve's
  step 0 is not the base model (a learned initialisation starts elsewhere)."""
  new = np.asarray(curves["answer_accuracy"], float)
  known = np.asarray(curves["known_accuracy"], float)
  before = float(known[:, 0].mean()) if known_before is None else float(known_before)
  return {"new_accuracy": float(new[:, -1].mean()), "new_auc": float(new[:, 1:].mean()),
          "known_before": before, "known_after": float(known[:, -1].mean()),
          "known_drop": before - float(known[:, -1].mean())}


def _setup(config, split: str):
  """``(learner, family, episodes)`` of ``config`` on ``split``: the few-shot evaluator's
  tasks (its key) for ``eval.num_tasks`` readings."""
  config = config_lib.validate(config)
  exp = experiment_lib.build(config)
  task = ml_collections.ConfigDict(config.task.to_dict())
  task.num_query = config.eval.num_query
  family = TASKS.get(task.name).build(task, split).view("episodes")
  key = evaluators.eval_key(config, evaluators.EVALUATORS.get("few_shot").stream)
  episodes = sample(family, jax.random.split(key, 4)[0], config.eval.num_tasks)
  return exp.learner, family, episodes


def _curves(config, learner, family, episodes, lr: float) -> dict[str, np.ndarray]:
  """Curves of plain fine-tuning at learning rate ``lr`` (``learner.learn == ('lr',)``: the
  learning rate is its only meta-parameter, an input of one compiled program)."""
  theta = {"lr": jnp.log(jnp.float32(lr))}
  curves = few_shot.learning_curves(learner, family, theta, episodes,
                                    config.eval.num_inner_steps, config.eval.task_batch_size)
  return {k: np.asarray(v) for k, v in curves.items()}


def _with_share(config, share: float) -> ml_collections.ConfigDict:
  out = ml_collections.ConfigDict(config.to_dict())
  out.task.replay_share = float(share)
  return out


CELLS = "grid.jsonl"  # the tuning's measured cells, one JSON line each, appended as measured


def cell_key(config: ml_collections.ConfigDict) -> str:
  """What a validation cell's scores depend on besides its learning rate and replay share: a
  hash of the validated config with those two left out."""
  c = config_lib.validate(config).to_dict()
  c["task"]["replay_share"] = c["learner"]["init_lr"] = None
  return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


def measured_cells(path: pathlib.Path, key: str) -> dict[tuple[float, float], dict]:
  """The cells of ``path`` (:data:`CELLS`) measured under config ``key``, by (lr, share), so a
  re-run or a resumed tuning reads only the cells it lacks. Cells of another config are left
  out, with a warning; a torn last line (a kill while appending) is dropped and logged; any
  other unreadable line is an error naming the file."""
  if not path.exists():
    return {}
  lines = path.read_text().splitlines()
  cells, other = {}, 0
  for i, line in enumerate(lines):
    try:
      cell = json.loads(line)
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        logging.warning("%s: its last line is torn (a kill while writing it); that cell is "
                        "measured again", path)
        continue
      raise ValueError(f"{path}, line {i + 1}: not JSON ({e}); delete the file to measure "
                       "every cell again") from e
    if cell.pop("config_key", None) != key:
      other += 1
      continue
    cells[(float(cell["lr"]), float(cell["replay_share"]))] = cell
  if other:
    logging.warning("%s: %d cell(s) measured under another config are not reused", path, other)
  return cells


def tune_baseline(config: ml_collections.ConfigDict, lrs, shares, workdir: pathlib.Path,
                  limit: float = LIMIT) -> dict:
  """Tunes Adam's learning rate and the replay share on the validation chapters, evaluates
  the chosen cell on the test chapters, writes ``workdir/baseline.json`` and returns it (see
  the module docstring). ``config`` is a ``meta_reading.py:SIZE,adam`` config."""
  if tuple(config.learner.learn) != ("lr",):
    raise ValueError(f"the baseline reads at a fixed learning rate: learner.learn=('lr',) "
                     f"(meta_reading.py's 'adam' reader), not {tuple(config.learner.learn)}")
  config = config_lib.validate(config)
  workdir.mkdir(parents=True, exist_ok=True)
  cells_path, key = workdir / CELLS, cell_key(config)
  measured = measured_cells(cells_path, key)
  grid = []
  for share in shares:  # the share sets the support set's shape: one program per share
    setup = None
    for lr in lrs:
      cell = measured.get((float(lr), float(share)))
      if cell is None:
        setup = setup or _setup(_with_share(config, share), "validation")
        cell = {"lr": float(lr), "replay_share": float(share),
                **score(_curves(config, *setup, lr))}
        with cells_path.open("a") as f:
          f.write(json.dumps({**cell, "config_key": key}) + "\n")
      logging.info("validation lr %g replay %g: new %.3f, known %.3f -> %.3f%s", lr, share,
                   cell["new_accuracy"], cell["known_before"], cell["known_after"],
                   "" if (float(lr), float(share)) not in measured
                   else f" (measured before, {cells_path})")
      grid.append(cell)
  within = [g for g in grid if within_limit(g["known_drop"], limit)]
  chosen = (max(within, key=lambda g: (g["new_accuracy"], -g["known_drop"])) if within
            else min(grid, key=lambda g: g["known_drop"]))
  best = _with_share(config, chosen["replay_share"])
  best.learner.init_lr = chosen["lr"]
  curves = _curves(config, *_setup(best, config.eval.split), chosen["lr"])
  entry = {}
  for k, v in curves.items():
    mean, ci = evaluators.mean_ci95(v)
    entry[k], entry[f"{k}_ci95"] = mean.tolist(), ci.tolist()
  out = {"reader": "adam (tuned)", "seed": config.seed, "limit": limit, "grid": grid,
         "chosen": {"lr": chosen["lr"], "replay_share": chosen["replay_share"],
                    "within_limit_on_validation": bool(within)},
         "test": score(curves), "curves": entry, "num_tasks": config.eval.num_tasks,
         "split": config.eval.split, "hardware": evaluators.hardware(),
         "config": config_lib.validate(best).to_dict()}
  (workdir / "baseline.json").write_text(json.dumps(out, indent=2))
  return out


def reader_of(config: dict) -> str:
  """A meta-trained reader's name: what it meta-learns, and how (and the probe's weight in its
  meta-objective where it is not 1, its limit where one is set, and whether the probe's term
  is its KL from the base model)."""
  how = config["estimator"]["name"]
  weight = config["task"].get("known_weight", 1.0)
  kl = config["task"].get("known_kl", False)
  if weight != 1.0 or kl:
    how += f", known {'KL ' if kl else ''}×{weight:g}"
  limit = config["task"].get("known_limit", 0.0)
  if limit > 0:
    how += f" above {limit:g} nats"
  return "+".join(config["learner"]["learn"]) + f" ({how})"


def load_run(workdir: pathlib.Path) -> dict:
  """A finished run: a tuned baseline (``baseline.json``) or a meta-trained reader
  (``eval.json``); ``FileNotFoundError`` naming the missing file otherwise."""
  if (workdir / "baseline.json").exists():
    b = json.loads((workdir / "baseline.json").read_text())
    return {"reader": b["reader"], "seed": b["seed"], "curves": b["curves"],
            "score": b["test"], "chosen": b["chosen"], "grid": b["grid"],
            "workdir": str(workdir),
            "config": b["config"], "hardware": b["hardware"]}
  path = workdir / "eval.json"
  if not path.exists():
    raise FileNotFoundError(f"{workdir}: neither baseline.json nor eval.json (the run did not "
                            "finish)")
  e = json.loads(path.read_text())
  meta = e["methods"]["meta"]
  base = None  # a learned initialisation's step 0 is its own: the probe before is the base's
  if "init" in e["config"]["learner"]["learn"]:
    if "initial" not in e["methods"]:
      raise ValueError(f"{path}: a learned initialisation's probe is measured from the base "
                       "model, the 'initial' baseline's step 0, which it lacks: evaluate "
                       "with eval.baselines=('initial',)")
    base = e["methods"]["initial"]["known_accuracy"][0]
  # the curves are means over tasks, and every score is linear in them
  return {"reader": reader_of(e["config"]), "seed": e["seed"], "curves": meta,
          "score": score({k: np.asarray(meta[k])[None] for k in ("answer_accuracy",
                                                                  "known_accuracy")}, base),
          "workdir": str(workdir), "config": e["config"], "hardware": e["hardware"],
          "meta_steps": e["checkpoint_step"],
          "train_seconds": reporting.train_seconds_by_step(workdir).get(e["checkpoint_step"])}


def summarise(runs: list[dict], limit: float = LIMIT) -> tuple[list[dict], dict]:
  """Rows per reader (mean, 95% half-width over seeds of each score) and the bar: the best
  meta-learned reader within the limit against the tuned baseline."""
  rows = []
  for reader in dict.fromkeys(r["reader"] for r in runs):
    mine = [r for r in runs if r["reader"] == reader]
    row = {"reader": reader, "seeds": len(mine)}
    for k in mine[0]["score"]:
      row[k], row[f"{k}_ci95"] = mean_ci([r["score"][k] for r in mine])
    row["within_limit"] = within_limit(row["known_drop"], limit)
    rows.append(row)
  base = next((r for r in rows if r["reader"].startswith("adam")), None)
  meta = [r for r in rows if not r["reader"].startswith("adam") and r["within_limit"]]
  bar = {"baseline": base and base["reader"], "best": None, "margin": None, "met": False}
  if base and meta:
    best = max(meta, key=lambda r: r["new_accuracy"])
    margin = best["new_accuracy"] - base["new_accuracy"]
    apart = (best["new_accuracy"] - best["new_accuracy_ci95"]
             > base["new_accuracy"] + base["new_accuracy_ci95"])
    bar.update(best=best["reader"], margin=margin, met=bool(margin >= BAR and apart))
  return rows, bar


def _plot(runs: list[dict], path: pathlib.Path) -> None:
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  for i, reader in enumerate(dict.fromkeys(r["reader"] for r in runs)):
    mine = [r for r in runs if r["reader"] == reader]
    for ax, metric in zip(axes, ("answer_accuracy", "known_accuracy")):
      values = 100 * np.stack([np.asarray(r["curves"][metric], float) for r in mine])
      mean = values.mean(0)
      steps = np.arange(len(mean))
      ax.plot(steps, mean, color=f"C{i}", label=f"{reader} ({len(mine)} seeds)")
      if len(mine) > 1:
        half = evaluators.mean_ci95(values)[1]
        ax.fill_between(steps, mean - half, mean + half, color=f"C{i}", alpha=0.15)
  axes[0].set(title="new people (the chapter read)", xlabel="fine-tuning steps",
              ylabel="exact answers (%)", ylim=(0, 100))
  axes[1].set(title="known people (forgetting probe)", xlabel="fine-tuning steps",
              ylabel="exact answers (%)", ylim=(0, 100))
  axes[1].legend(title="reader", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.suptitle("reading a chapter of new people: mean over seeds, 95% interval shaded")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write(runs: list[dict], out: pathlib.Path, command: str, limit: float = LIMIT
          ) -> tuple[list[dict], dict]:
  """Writes OUT.md / .csv / .png; returns the rows and the bar."""
  rows, bar = summarise(runs, limit)
  out.parent.mkdir(parents=True, exist_ok=True)
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  _plot(runs, out.with_suffix(".png"))
  pct = lambda v, ci: f"{100 * v:.1f}" + ("" if ci != ci else f" ± {100 * ci:.1f}")
  c = runs[0]["config"]
  t = c["task"]
  steps = c["learner"]["num_inner_steps"]
  lines = [
      "# Meta-learned reading on the biography textbook", "",
      f"A decoder LM pretrained on {t['known_people']} people (`{reporting.short_path(c['model']['hf_dir'])}`)"
      " reads "
      f"a chapter of {t['people_per_chapter']} people it has never seen ({t['multiplicity']} "
      f"biographies each) for {steps} LoRA steps (rank {c['learner']['rank']}, "
      f"{c['learner']['rows_per_step']} rows per step), then answers their questions ("
      "`new`) and questions about known people it was never trained on (`known`, the "
      f"forgetting probe). Exact answers in %, on {c['eval']['num_tasks']} chapter readings "
      f"of the `{c['eval']['split']}` split per seed; mean over seeds ± 95% interval "
      f"(Student t). A reader may lose at most {100 * limit:.0f} points of `known`, from the "
      "base model's (`known before`; a learned initialisation's own start is after it).", "",
      f"| reader | seeds | new after {steps} steps | new, mean over steps | known before | "
      "known after | known drop | within limit |", "|---" * 8 + "|"]
  for r in rows:
    lines.append(
        f"| {r['reader']} | {r['seeds']} | {pct(r['new_accuracy'], r['new_accuracy_ci95'])} | "
        f"{pct(r['new_auc'], r['new_auc_ci95'])} | "
        f"{pct(r['known_before'], r['known_before_ci95'])} | "
        f"{pct(r['known_after'], r['known_after_ci95'])} | "
        f"{pct(r['known_drop'], r['known_drop_ci95'])} | {'yes' if r['within_limit'] else 'no'} |")
  tuned_runs = [r for r in runs if "chosen" in r]
  if tuned_runs:
    lines += ["", "The baseline's learning rate and replay share, chosen per seed on the "
              "validation chapters from the cells that seed's tuning read: " + ", ".join(
                  f"seed {r['seed']}: lr {r['chosen']['lr']:g} / replay "
                  f"{r['chosen']['replay_share']:g} (of {len(r['grid'])} "
                  f"cell{'s' * (len(r['grid']) != 1)}"
                  + ("" if r["chosen"]["within_limit_on_validation"]
                     else ", none within the limit") + ")"
                  for r in tuned_runs) + "."]
  tuned = next((r for r in runs if "grid" in r), None)
  if tuned is not None:
    lines += ["", f"The baseline's tuning on the validation chapters (seed {tuned['seed']}): "
              "new-people accuracy after the steps, and the known people's before -> after.",
              "", "| lr | replay share | new | known | drop | within limit |",
              "|---|---|---|---|---|---|"]
    for g in tuned["grid"]:
      lines.append(f"| {g['lr']:g} | {g['replay_share']:g} | {100 * g['new_accuracy']:.1f} | "
                   f"{100 * g['known_before']:.1f} -> {100 * g['known_after']:.1f} | "
                   f"{100 * g['known_drop']:.1f} | "
                   f"{'yes' if within_limit(g['known_drop'], limit) else 'no'} |")
  if all(r["reader"].startswith("adam") for r in rows):
    verdict = "no meta-learned reader in these runs: the bar is not assessed"
  elif bar["best"] is None:
    verdict = "no meta-learned reader within the limit to compare"
  else:
    verdict = (f"best meta-learned reader within the limit: {bar['best']}, "
               f"{100 * bar['margin']:+.1f} points over the tuned baseline; bar (>= "
               f"{100 * BAR:.0f} points, intervals apart): {'met' if bar['met'] else 'not met'}")
  seconds = [r.get("train_seconds") for r in runs if r.get("train_seconds")]
  lines += ["", f"**{verdict}.**", "",
            f"Learning curves: `{out.with_suffix('.png').name}`. Hardware: "
            f"{runs[0]['hardware']}."
            + (f" Meta-training {min(seconds):.0f}-{max(seconds):.0f} s per run." if seconds
               else ""), "", f"Command: `{command}`", ""]
  out.with_suffix(".md").write_text("\n".join(lines))
  return rows, bar
