"""A learning-progress teacher over the chapters of a book, at language-model scale
(``launch/reproduce/lm_textbook_teacher.sh``).

A pretrained LM reads chapters of new people (:mod:`metalearn.tasks.biography_reading`,
the ``eval.split`` chapters) under a fixed budget of ``rounds`` x ``steps_per_round`` LoRA
steps; before each round a teacher (:mod:`metalearn.curriculum`: ``uniform``, ``fixed`` in
the book's order, ``tscl``, ``exp3s``) picks the chapter, the reader takes ``steps_per_round``
fine-tuning steps on it (its state carried across rounds), and the teacher observes the
chapter's score after the round: the negated query loss on its questions, which TSCL and Exp3.S
turn into learning progress. After the budget, every chapter's questions are asked:

* ``book_accuracy``: exact answers over the whole book (the mean over chapters);
* ``known_accuracy``: the probe of people known before reading;
* ``forgetting``: per chapter read, its accuracy right after its last round minus at the end,
  averaged over the chapters read;
* ``chapters_read``: how many chapters the teacher ever picked.

One jitted ``lax.scan`` over rounds per (teacher, seed); each chapter's episode (its questions,
replayed rows and probe) is drawn once per run.
"""

import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn import config as config_lib
from metalearn import evaluators, plots, reporting
from metalearn import experiment as experiment_lib
from metalearn.curriculum.base import TEACHERS
from metalearn.registry import complete
from metalearn.reproductions.progress import mean_ci
from metalearn.tasks import TASKS

TEACHER_NAMES = ("uniform", "fixed", "tscl", "exp3s")


def make_teacher(name: str, num_chapters: int, rounds: int):
  """Teacher ``name`` over ``num_chapters`` arms with its default options; ``fixed`` reads the
  chapters in order, ``rounds // num_chapters`` rounds each."""
  spec = TEACHERS.get(name, "teacher")
  group = dict(name=name)
  if name == "fixed":
    group["steps_per_task"] = max(rounds // num_chapters, 1)
  options = complete(ml_collections.ConfigDict(group), spec.options, "curriculum",
                     f"teacher {name!r}").to_dict()
  options.pop("name", None)
  options.pop("grid", None)
  return spec.build(options, ("discrete", num_chapters))


@functools.partial(jax.jit, static_argnums=(0, 2, 5, 6))
def read_with_teacher(learner, chapters, teacher, theta, key, rounds: int,
                      steps_per_round: int) -> dict:
  """One run (see the module docstring): ``tasks [rounds]`` (the chapter of each round),
  ``round_accuracy`` / ``round_loss [rounds]`` (its chapter's after the round), ``final`` (each
  chapter's metrics at the end, ``[C]``) and ``last_visit [C]`` (each chapter's accuracy after
  its last round, NaN if never read)."""
  num = chapters.num_chapters
  k_teacher, k_episodes, k_rounds = jax.random.split(key, 3)
  episodes = jax.vmap(chapters.chapter_episode)(jnp.arange(num),
                                                jax.random.split(k_episodes, num))
  first = jax.tree.map(lambda a: a[0], episodes)

  def metrics(state, episode):
    return chapters.metrics(learner.predict(theta, state, episode.query_x), episode.query_y)

  def one_round(carry, k):
    state, teacher_state, last = carry
    chapter = teacher.propose(teacher_state, k)
    episode = jax.tree.map(lambda a: a[chapter], episodes)
    state = jax.lax.fori_loop(0, steps_per_round,
                              lambda _, s: learner.step(theta, s, episode), state)
    m = metrics(state, episode)
    teacher_state = teacher.observe(teacher_state, chapter, -m["loss"])
    last = last.at[chapter].set(m["answer_accuracy"])
    return (state, teacher_state, last), (chapter, m["answer_accuracy"], m["loss"])

  carry = (learner.init_state(theta, first), teacher.init(k_teacher),
           jnp.full((num,), jnp.nan, jnp.float32))
  (state, _, last), (tasks, accuracy, loss) = jax.lax.scan(
      one_round, carry, jax.random.split(k_rounds, rounds))
  final = jax.vmap(lambda ep: metrics(state, ep))(episodes)
  return {"tasks": tasks, "round_accuracy": accuracy, "round_loss": loss, "final": final,
          "last_visit": last}


def summary(out: dict) -> dict[str, float]:
  """The run's scores (the module docstring) from :func:`read_with_teacher`'s arrays."""
  final = np.asarray(out["final"]["answer_accuracy"], float)
  last = np.asarray(out["last_visit"], float)
  read = ~np.isnan(last)
  s = {"book_accuracy": float(final.mean()), "chapters_read": int(read.sum()),
       "forgetting": float(np.mean(last[read] - final[read])) if read.any() else 0.0}
  if "known_accuracy" in out["final"]:
    s["known_accuracy"] = float(np.mean(out["final"]["known_accuracy"]))
  return s


def run(config: ml_collections.ConfigDict, teachers, rounds: int, steps_per_round: int,
        seeds: int, out: pathlib.Path, command: str) -> list[dict]:
  """Every teacher for ``seeds`` seeds; writes OUT.md / .csv / .png / .json; returns the
  rows. ``config`` is a ``meta_reading.py:SIZE,adam`` config (task, base model, reader)."""
  config = config_lib.validate(config)
  if tuple(config.learner.learn) != ("lr",):
    raise ValueError("the teacher's reader fine-tunes at a fixed learning rate: a "
                     "meta_reading.py 'adam' config (learner.learn=('lr',))")
  unknown = sorted(set(teachers) - set(TEACHERS.names()))
  if unknown:
    raise ValueError(f"teachers {unknown}: from {TEACHERS.names()}")
  exp = experiment_lib.build(config)
  chapters = TASKS.get(config.task.name).build(config.task, config.eval.split).view(
      "episodes")
  theta = {"lr": jnp.log(jnp.float32(config.learner.init_lr))}
  runs = []
  for name in teachers:
    teacher = make_teacher(name, chapters.num_chapters, rounds)
    for seed in range(seeds):
      start = time.perf_counter()
      arrays = read_with_teacher(exp.learner, chapters, teacher, theta,
                                 jax.random.key(seed), rounds, steps_per_round)
      arrays = jax.tree.map(np.asarray, arrays)
      runs.append({"teacher": name, "seed": seed, **summary(arrays),
                   "seconds": time.perf_counter() - start,
                   "tasks": arrays["tasks"].tolist(),
                   "final_by_chapter": arrays["final"]["answer_accuracy"].tolist()})
  rows = []
  for name in teachers:
    mine = [r for r in runs if r["teacher"] == name]
    row = {"teacher": name, "seeds": len(mine)}
    for k in ("book_accuracy", "known_accuracy", "forgetting", "chapters_read"):
      if k in mine[0]:
        row[k], row[f"{k}_ci95"] = mean_ci([r[k] for r in mine])
    rows.append(row)
  _write(rows, runs, config, rounds, steps_per_round, out, command)
  return rows


def _write(rows, runs, config, rounds, steps_per_round, out: pathlib.Path, command) -> None:
  out.parent.mkdir(parents=True, exist_ok=True)
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  out.with_suffix(".json").write_text(json.dumps(runs))
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  for i, row in enumerate(rows):
    mine = [r for r in runs if r["teacher"] == row["teacher"]]
    by_chapter = 100 * np.mean([r["final_by_chapter"] for r in mine], axis=0)
    axes[0].plot(np.arange(len(by_chapter)), by_chapter, marker="o", color=f"C{i}",
                 label=row["teacher"])
    axes[1].plot(np.arange(rounds), mine[0]["tasks"], marker=".", ls="", color=f"C{i}",
                 label=row["teacher"], alpha=0.7)
  axes[0].set(title="each chapter's questions after the budget (mean over seeds)",
              xlabel="chapter", ylabel="exact answers (%)", ylim=(0, 100))
  axes[1].set(title="the chapter each round reads (seed 0)", xlabel="round", ylabel="chapter")
  axes[1].legend(title="teacher", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=120)
  plt.close(fig)
  pct = lambda v, ci: f"{100 * v:.1f}" + ("" if ci != ci else f" ± {100 * ci:.1f}")
  t = config.task
  lines = [
      "# A learning-progress teacher over the chapters of a book", "",
      f"A decoder LM pretrained on {t.known_people} people (`{reporting.short_path(config.model.hf_dir)}`) "
      "reads the "
      f"{t.eval_chapters} `{config.eval.split}` chapters of new people ({t.people_per_chapter} "
      f"per chapter) within {rounds} rounds x {steps_per_round} LoRA steps (Adam, lr "
      f"{config.learner.init_lr:g}, replay share {t.replay_share:g}); a teacher picks each "
      "round's chapter and observes its negated query loss after the round. "
      + ("Every new person has a mentor from an earlier chapter (the first chapter's: a known "
         "person), asked about in two of their eight questions (who, and the mentor's birth "
         "city, told only in the mentor's chapter), so the order matters; `fixed` reads the "
         "chapters in order. " if t.prerequisites else "No prerequisites: chapters are "
         "independent. ")
      + "Exact answers in %, mean over seeds ± 95% interval (Student t).", "",
      "| teacher | seeds | whole book | known people | forgetting | chapters read |",
      "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {r['teacher']} | {r['seeds']} | {pct(r['book_accuracy'], r['book_accuracy_ci95'])}"
        f" | {pct(r.get('known_accuracy', float('nan')), r.get('known_accuracy_ci95', 0))} | "
        f"{pct(r['forgetting'], r['forgetting_ci95'])} | "
        f"{r['chapters_read']:.1f} |")
  top = max(r["book_accuracy"] for r in rows)
  best = " and ".join(r["teacher"] for r in rows if r["book_accuracy"] == top)
  lines += ["", f"Most of the book: **{best}**. Per-chapter accuracy and the "
            f"chapters chosen: `{out.with_suffix('.png').name}`; every run: "
            f"`{out.with_suffix('.json').name}`. Hardware: {evaluators.hardware()}; "
            f"{min(r['seconds'] for r in runs):.0f}-{max(r['seconds'] for r in runs):.0f} s "
            "per run (each teacher's first includes compilation).", "",
            f"Command: `{command}`", ""]
  out.with_suffix(".md").write_text("\n".join(lines))
