r"""Evaluating a learner that reads textbooks: what it learns per chapter, keeps and transfers.

For ``eval.num_books`` fresh books (``eval.split``: Omniglot books of held-out alphabets) the
learner reads each book once, in order, from its (meta-learned) start; one ``unroll`` with
``measure`` = every chapter's query metrics gives :math:`M_t[c]`, chapter :math:`c`'s metric
after :math:`t` exercises (:math:`t = 0..T`). Sampled at chapter ends,

.. math::  R[s, c] = M_{(s+1)E}[c],

the metric on chapter :math:`c` after reading through the end of chapter :math:`s` (rows:
time, columns: chapters; above the diagonal: chapters not read yet). Beside it, the same
learner reads each chapter *alone*, from the same start: :math:`S_t[c]`, :math:`t = 0..E`.
Per chapter, with losses (lower is better; for accuracy the signs flip so that positive is
always good for transfer and bad for forgetting):

* **progress** (loss only): the area under the normalised curve while reading the chapter,
  :math:`P_c = \frac1E \sum_{k=1}^{E} \frac{\ell_c(cE) - \ell_c(cE + k)}{\ell_c(cE)}` with
  :math:`\ell_c(t) = M_t[c]`; ``progress_scratch`` is the same on :math:`S`;
* **forward transfer**: :math:`FT_c = S_E[c] - R[c, c]`, how much lower chapter :math:`c`'s loss
  is after reading chapters :math:`0..c-1` first than after reading :math:`c` alone
  (:math:`FT_0 = 0`: the two runs are the same);
* **forgetting**: :math:`F_c = R[C-1, c] - R[c, c]`, how much of chapter :math:`c` is lost by
  the end of the book; **backward transfer** is :math:`BWT_c = R[c, c] - R[C-1, c] = -F_c`
  (0 for the last chapter).

The book's curve (the learner's learning curve, :math:`L_t` = the mean over chapters read so
far) gives ``area`` (mean of :math:`L_1..L_T`) and ``final`` (:math:`L_T`). With
``eval.measure='chapter_ends'`` every chapter is measured only before the book and at chapter
ends, and the chapter being read at each of its steps: everything above is the same except the
book curve, sampled at chapter ends (``area``: the mean of :math:`L_E, L_{2E}, \dots, L_T`); a
long book costs :math:`C(E+1) + C^2` chapter measurements instead of :math:`(T+1)C`.
Everything is a mean over books with a 95% confidence half-width (``*_ci95``). Methods:
``meta`` (the checkpoint) and ``eval.baselines`` (``random_init``: the same reader from a
fresh initialisation). MAML-family checkpoints meta-trained on single chapters read books with the
same SGD (``anil`` adapts the head only, like ``oml``). Writes ``eval.json``,
``textbook_R.png`` (R as heatmaps) and ``textbook_curves.png`` (per-chapter curves).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn.evaluators import base
from metalearn.learners.sequential import SequentialLearner
from metalearn.registry import Option
from metalearn.tasks import TASKS
from metalearn.unroll import unroll
from metalearn import plots

STREAM = 0x7B00C  # evaluation books: fold_in(key(eval.seed), STREAM), apart from training's
HIGHER_IS_BETTER = ("accuracy",)


def make_book(config: ml_collections.ConfigDict, split: str):
  """The textbook of ``config.task`` on ``split`` (the book itself, whatever view the learner
  meta-trained on)."""
  return TASKS.get(config.task.name, "task.name").build(config.task, split)


@functools.partial(jax.jit, static_argnums=(0, 4))
def read_books(learner: SequentialLearner, family, theta, episodes, batch_size: int) -> dict:
  """Reads each book in order and each chapter alone: ``{"book": {metric: [N, T+1, C]},
  "alone": {metric: [N, C, E+1]}}`` (``alone[:, c, k]``: chapter ``c``'s metric after
  reading its first ``k`` exercises from the initial state)."""
  T = family.num_steps

  def one(episode):
    _, book = unroll(learner, theta, learner.init_state(theta, episode), episode, T,
                     measure=_every_chapter(learner, family))
    return {"book": book, "alone": _alone(learner, family, theta, episode)}

  return jax.lax.map(one, episodes, batch_size=batch_size)


def _every_chapter(learner, family):
  """A ``measure``: every chapter's query metrics, ``{metric: [C]}``."""
  return lambda th, s, ep: jax.vmap(family.metrics)(learner.chapter_predictions(th, s, ep),
                                                    ep.query_y)


def _chapter(learner, family, c):
  """A ``measure``: chapter ``c``'s query metrics."""
  return lambda th, s, ep: family.metrics(learner.predict(th, s, ep.query_x[c]),
                                          ep.query_y[c])


def _alone(learner, family, theta, episode) -> dict:
  """Each chapter read alone from the initial state: ``{metric: [C, E+1]}``."""
  E = family.exercises_per_chapter

  def alone(c):
    return unroll(learner, theta, learner.start_at(theta, episode, c * E), episode, E,
                  measure=_chapter(learner, family, c))[1]

  return jax.vmap(alone)(jnp.arange(family.num_chapters))


@functools.partial(jax.jit, static_argnums=(0, 4))
def read_books_at_chapter_ends(learner: SequentialLearner, family, theta, episodes,
                               batch_size: int) -> dict:
  """:func:`read_books` measuring every chapter only before the book and at chapter ends, and
  the chapter being read at each of its steps: ``{"start": {metric: [N, C]}, "ends": {metric:
  [N, C, C]}, "reading": {metric: [N, C, E+1]}, "alone": ...}`` (``reading[:, c, k]``:
  chapter ``c`` after ``c * E + k`` exercises of the book). Every summary but the book curve
  between chapter ends needs only these: ``C (E+1) + C^2`` chapter measurements per book
  instead of ``(T+1) C``."""
  C, E = family.num_chapters, family.exercises_per_chapter
  every = _every_chapter(learner, family)

  def one(episode):
    state_0 = learner.init_state(theta, episode)

    def chapter(state, c):
      state, reading = unroll(learner, theta, state, episode, E,
                              measure=_chapter(learner, family, c))
      return state, (reading, every(theta, state, episode))

    _, (reading, ends) = jax.lax.scan(chapter, state_0, jnp.arange(C))
    return {"start": every(theta, state_0, episode), "ends": ends, "reading": reading,
            "alone": _alone(learner, family, theta, episode)}

  return jax.lax.map(one, episodes, batch_size=batch_size)


def book_from_chapter_ends(start_NC: np.ndarray, ends_NCC: np.ndarray,
                           reading_NCK: np.ndarray) -> np.ndarray:
  """:func:`read_books_at_chapter_ends`' arrays as :func:`read_books`' ``[N, T+1, C]``, NaN
  where nothing was measured (chapter ``c`` between chapter ends while another is read)."""
  N, C, K = reading_NCK.shape
  E = K - 1
  book = np.full((N, C * E + 1, C), np.nan)
  book[:, 0] = start_NC
  for c in range(C):
    book[:, c * E:(c + 1) * E + 1, c] = reading_NCK[:, c]
    book[:, (c + 1) * E] = ends_NCC[:, c]
  return book


def at_chapter_ends(book_NTC: np.ndarray, exercises_per_chapter: int) -> np.ndarray:
  """:math:`R[s, c] = M_{(s+1)E}[c]`: ``[..., T+1, C]`` -> ``[..., C, C]``."""
  return book_NTC[..., exercises_per_chapter::exercises_per_chapter, :]


def within_chapter_progress(curve_KC: np.ndarray, exercises_per_chapter: int) -> np.ndarray:
  """:math:`P_c` from a book's per-chapter loss curves ``[..., T+1, C]``: ``[..., C]``
  (chapter ``c``'s loss from ``t = cE`` to ``(c+1)E``, through :func:`progress_alone`)."""
  E, C = exercises_per_chapter, curve_KC.shape[-1]
  segments = np.stack([curve_KC[..., c * E:(c + 1) * E + 1, c] for c in range(C)], axis=-2)
  return progress_alone(segments)


def progress_alone(curve_CK: np.ndarray) -> np.ndarray:
  """:math:`\\frac1E\\sum_{k\\ge1} (\\ell(0) - \\ell(k)) / \\ell(0)` along the last axis."""
  start = curve_CK[..., :1]
  return np.mean((start - curve_CK[..., 1:]) / start, axis=-1)


def forward_transfer(R_CC: np.ndarray, alone_C: np.ndarray,
                     higher_is_better: bool = False) -> np.ndarray:
  """:math:`FT_c = S[c] - R[c, c]` (losses; negated for a metric where higher is better)."""
  ft = alone_C - np.diagonal(R_CC, axis1=-2, axis2=-1)
  return -ft if higher_is_better else ft


def forgetting(R_CC: np.ndarray, higher_is_better: bool = False) -> np.ndarray:
  """:math:`F_c = R[C-1, c] - R[c, c]` (losses; negated for a metric where higher is
  better). Backward transfer is :math:`-F_c`."""
  f = R_CC[..., -1, :] - np.diagonal(R_CC, axis1=-2, axis2=-1)
  return -f if higher_is_better else f


def book_curve(book_NTC: np.ndarray, exercises_per_chapter: int) -> np.ndarray:
  """The learner's learning curve :math:`L_t`: the mean over chapters read so far
  (before any step: the first chapter): ``[..., T+1, C]`` -> ``[..., T+1]``."""
  T, C = book_NTC.shape[-2] - 1, book_NTC.shape[-1]
  current = np.maximum(np.arange(T + 1) - 1, 0) // exercises_per_chapter
  read_TC = np.arange(C)[None, :] <= current[:, None]
  return np.sum(np.where(read_TC, book_NTC, 0.0), axis=-1) / read_TC.sum(-1)


def _mean_ci(values_N: np.ndarray) -> tuple[list, list]:
  mean, ci = base.mean_ci95(np.asarray(values_N, np.float64))
  return mean.tolist(), ci.tolist()


def summarize(book: dict, alone: dict, exercises_per_chapter: int,
              chapter_ends: bool = False) -> dict:
  """Per-metric results (see the module docstring) from :func:`read_books`' arrays. With
  ``chapter_ends`` (``book`` from :func:`book_from_chapter_ends`) the book curve is sampled at
  chapter ends only (``curve_steps``), its area their mean."""
  E, out = exercises_per_chapter, {}
  for metric, book_NTC in book.items():
    book_NTC, alone_NCK = np.asarray(book_NTC), np.asarray(alone[metric])
    higher = metric in HIGHER_IS_BETTER
    R = at_chapter_ends(book_NTC, E)
    alone_end = alone_NCK[..., -1]
    ft, fg = forward_transfer(R, alone_end, higher), forgetting(R, higher)
    curve = book_curve(book_NTC, E)
    steps = np.arange(curve.shape[-1])
    if chapter_ends:
      curve, steps = curve[..., ::E], steps[::E]
    m = {"curve_steps": steps.tolist()}
    for key, values in (("R", R), ("alone", alone_end), ("forward_transfer", ft),
                        ("forgetting", fg), ("backward_transfer", -fg), ("curve", curve)):
      m[key], m[f"{key}_ci95"] = _mean_ci(values)
    m["chapter_curves"] = [[None if np.isnan(v) else v for v in row]
                           for row in book_NTC.mean(0).tolist()]
    C = R.shape[-1]
    m["summary"] = {"area": float(curve[:, 1:].mean()), "final": float(curve[:, -1].mean()),
                    "forward_transfer": float(ft[:, 1:].mean()) if C > 1 else 0.0,
                    "forgetting": float(fg[:, :-1].mean()) if C > 1 else 0.0}
    if metric == "loss":
      for key, values in (("progress", within_chapter_progress(book_NTC, E)),
                          ("progress_alone", progress_alone(alone_NCK))):
        m[key], m[f"{key}_ci95"] = _mean_ci(values)
      m["summary"]["progress"] = float(np.mean(m["progress"]))
    out[metric] = m
  return out


def evaluate(ctx: base.Context) -> dict:
  """Reads fresh books of ``eval.split`` with the checkpoint and the baselines."""
  config = ctx.config
  book = make_book(config, config.eval.split)
  reader = ctx.experiment.learner.reader(book)
  k_books, k_init = jax.random.split(ctx.key)
  episodes = base.sample(book, k_books, config.eval.num_books)
  thetas = {"meta": ctx.theta}
  if "random_init" in config.eval.baselines:
    thetas["random_init"] = reader.init(k_init)
  results = {"mode": reader.mode, "split": config.eval.split,
             "num_books": config.eval.num_books, "num_chapters": book.num_chapters,
             "exercises_per_chapter": book.exercises_per_chapter,
             "metric": book.primary_metric, "methods": {}}
  ends = config.eval.measure == "chapter_ends"
  results["measure"] = config.eval.measure
  for name, th in thetas.items():
    if ends:
      arrays = read_books_at_chapter_ends(reader, book, th, episodes,
                                          config.eval.task_batch_size)
      arrays["book"] = {m: book_from_chapter_ends(*(np.asarray(arrays[k][m]) for k in
                                                    ("start", "ends", "reading")))
                        for m in arrays["ends"]}
    else:
      arrays = read_books(reader, book, th, episodes, config.eval.task_batch_size)
    results["methods"][name] = summarize(arrays["book"], arrays["alone"],
                                         book.exercises_per_chapter, ends)
  results["metrics"] = sorted(results["methods"]["meta"])
  return results


def _metrics(results: dict) -> list[str]:
  """The primary metric, and the loss beside it (when the metric is not the loss)."""
  return list(dict.fromkeys([results["metric"], "loss"]))


def plot(results: dict, workdir: pathlib.Path) -> dict:
  """``textbook_R.png`` (R of the primary metric and of the loss, one heatmap per method) and
  ``textbook_curves.png`` (each chapter's loss while the book is read)."""
  plt = plots.pyplot()
  methods = results["methods"]
  C, E = results["num_chapters"], results["exercises_per_chapter"]
  rows = _metrics(results)
  fig, axes = plt.subplots(len(rows), len(methods),
                           figsize=(4.2 * len(methods), 3.6 * len(rows)), squeeze=False)
  for ax, (metric, (name, m)) in zip(axes.ravel(), [(metric, item) for metric in rows
                                                    for item in methods.items()]):
    R = np.asarray(m[metric]["R"])
    im = ax.imshow(R, cmap="viridis" if metric in HIGHER_IS_BETTER else "viridis_r")
    for s in range(C):
      for c in range(C):
        r, g, b, _ = im.cmap(im.norm(R[s, c]))
        ax.text(c, s, f"{R[s, c]:.{2 if C <= 8 else 1}f}", ha="center", va="center",
                fontsize=7 if C <= 8 else 4.5,
                color="k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w")
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xlabel("chapter c (queries)")
    ax.set_ylabel("after reading chapter s")
    ax.set_title(f"{name}: R[s, c] ({metric})")
    fig.colorbar(im, ax=ax, fraction=0.046)
  fig.tight_layout()
  paths = {"R": workdir / "textbook_R.png"}
  fig.savefig(paths["R"], dpi=120)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(7, 4))
  colors = plt.get_cmap("tab10")
  for style, (name, m) in zip(("-", "--", ":"), methods.items()):
    curves = np.array(m["loss"]["chapter_curves"], dtype=float)  # None: not measured
    for c in range(C):
      ax.plot(np.arange(curves.shape[0]), curves[:, c], style, color=colors(c % 10),
              marker="." if results.get("measure") == "chapter_ends" else None, markersize=3,
              label=f"{name}: chapter {c}" if style == "-" or c == 0 else None)
  for s in range(1, C):
    ax.axvline(s * E, color="gray", lw=0.5)
  ax.set_xlabel("exercises read")
  ax.set_ylabel("query loss")
  ax.set_yscale("log")
  ax.set_title("each chapter's loss while reading the book (dashed: " +
               ", ".join(list(methods)[1:]) + ")" if len(methods) > 1 else "")
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  paths["curves"] = workdir / "textbook_curves.png"
  fig.savefig(paths["curves"], dpi=120)
  plt.close(fig)
  return {k: str(v) for k, v in paths.items()}


def format_table(results: dict, method: str = "meta", metric: str | None = None) -> str:
  """Markdown: per chapter, ``metric`` (default: the primary one) after reading it, at the end
  of the book and read alone, the loss progress, forward transfer and forgetting (means +- 95%
  CI)."""
  metric, m = metric or results["metric"], results["methods"][method]
  p, loss = m[metric], m["loss"]
  cell = lambda v, ci: f"{v:.3f} ± {ci:.3f}"
  lines = [f"| chapter | {metric} after it | {metric} at end | {metric} alone | progress | "
           "progress alone | forward transfer | forgetting |", "|---" * 8 + "|"]
  for c in range(results["num_chapters"]):
    lines.append(
        f"| {c} | {cell(p['R'][c][c], p['R_ci95'][c][c])} | "
        f"{cell(p['R'][-1][c], p['R_ci95'][-1][c])} | {cell(p['alone'][c], p['alone_ci95'][c])}"
        f" | {cell(loss['progress'][c], loss['progress_ci95'][c])} | "
        f"{cell(loss['progress_alone'][c], loss['progress_alone_ci95'][c])} | "
        f"{cell(p['forward_transfer'][c], p['forward_transfer_ci95'][c])} | "
        f"{cell(p['forgetting'][c], p['forgetting_ci95'][c])} |")
  s = p["summary"]
  at = " at chapter ends" if results.get("measure") == "chapter_ends" else ""
  lines += ["", f"book curve ({metric}{at}): area {s['area']:.3f}, final {s['final']:.3f}; mean "
            f"forward transfer {s['forward_transfer']:.3f}, mean forgetting "
            f"{s['forgetting']:.3f}; mean progress {loss['summary']['progress']:.3f}"]
  return "\n".join(lines)


def format_report(results: dict) -> str:
  """:func:`format_table` for every method, of the primary metric and of the loss."""
  return "\n\n".join(f"{method}, {metric}:\n\n{format_table(results, method, metric)}"
                      for metric in _metrics(results) for method in results["methods"])


def _title(results: dict) -> str:
  return (f"Reading {results['num_books']} fresh books ({results['split']} split) of "
          f"{results['num_chapters']} chapters x {results['exercises_per_chapter']} exercises, "
          f"checkpoint step {results['checkpoint_step']} (mean ± 95% CI):")


base.register(
    name="textbook", doc="fresh books read in order: per-chapter progress, forward transfer "
    "and forgetting", evaluate=evaluate, report=format_report,
    plots=lambda results, ctx: plot(results, ctx.workdir), title=_title,
    families=("book",), needs=frozenset({"reads_books"}), stream=STREAM,
    options=dict(
        split=Option("test", choices=("train", "validation", "test"),
                     doc="which books (textbook_omniglot: background or held-out alphabets)"),
        num_books=Option(100, ge=2, doc="evaluation books"),
        task_batch_size=Option(50, ge=1, doc="books read at once"),
        baselines=Option(("random_init",), choices=("random_init",),
                         doc="the same reader from a fresh initialisation"),
        measure=Option("every_step", choices=("every_step", "chapter_ends"),
                       doc="when every chapter is measured: after every exercise, or before "
                       "the book and at chapter ends only (the chapter being read still at "
                       "every step; the book curve at chapter ends; far fewer forward passes "
                       "for long books)")))
