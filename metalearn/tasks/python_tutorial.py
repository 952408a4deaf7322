"""The Python tutorial read in order by a language-model learner (``task.name='python_tutorial'``):
a real textbook for the readers of the biography chapters.

The chapters are :func:`metalearn.lm.python_tutorial.read`'s (``directory``, else
``$METALEARN_PYTHON_TUTORIAL_DIR``), those named in ``chapters`` (by default every chapter with
questions), in the tutorial's order. A chapter's support rows are its prose, tokenised and cut
into rows of ``max_len`` tokens (consecutive rows share one token, so every next-token target
is scored once), cycled to the longest chapter's count so that every chapter has the same
shape; its queries are its questions of the kinds in ``questions`` (examples graded by
execution, cloze), cycled likewise, answers alone scored. The family is a book
(:class:`metalearn.tasks.biography_reading.ReadingBook`, the chapters in order,
``steps_per_chapter`` steps of ``rows_per_step`` rows each), so the textbook evaluator gives the
forgetting matrix over its chapters; its ``episodes`` view is single chapters. There is one
book: every split is the whole tutorial.
"""

import functools

import jax.numpy as jnp

from metalearn.lm import python_tutorial as pt
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, TaskSpec
from metalearn.tasks.biographies import load_tokenizer, pad_rows, question_row
from metalearn.tasks.biography_reading import ReadingBook, ReadingFamily

SPLITS = ("train", "validation", "test")
QUESTIONS = ("examples", "cloze")
WITH_QUESTIONS = ("interpreter", "introduction", "controlflow", "datastructures", "modules",
                  "inputoutput", "errors", "classes", "stdlib", "stdlib2", "venv",
                  "floatingpoint", "appendix")


@functools.lru_cache(maxsize=4)
def _chapters(directory: str) -> tuple[pt.Chapter, ...]:
  """The tutorial, read once per process (its examples run in a child interpreter)."""
  return tuple(pt.read(directory))


def _cycled(rows: list, count: int) -> list:
  return [rows[i % len(rows)] for i in range(count)]


def chunks(ids: list[int], length: int) -> list[list[int]]:
  """Rows of at most ``length + 1`` tokens covering ``ids``, consecutive rows sharing one
  token (each row's inputs are its first ``length``, its targets its last ``length``)."""
  return [ids[i:i + length + 1] for i in range(0, max(len(ids) - 1, 1), length)]


def build_family(t, split: str) -> ReadingBook:
  """The book of task config ``t`` (every split: the whole tutorial)."""
  if split not in SPLITS:
    raise ConfigError(f"task 'python_tutorial' has splits {SPLITS}, not {split!r} (eval.split)")
  every = _chapters(str(pt.find(t.directory)))
  chapters = [c for c in every if c.name in t.chapters]
  tok = load_tokenizer(t.tokenizer)
  pad = tok.pad_id if tok.pad_id is not None else 0
  reading, questions = [], []
  for c in chapters:
    asked = (c.examples if "examples" in t.questions else ()) + (
        c.cloze if "cloze" in t.questions else ())
    if not asked:
      raise ConfigError(f"chapter {c.name!r} has no questions of the kinds "
                        f"{tuple(t.questions)}: leave it out of task.chapters")
    reading.append([(row, 0) for row in chunks(tok.encode(c.text), t.max_len)])
    questions.append([question_row(tok, q.question, q.answer) for q in asked])
  rows = max(len(r) for r in reading)
  asked = max(len(q) for q in questions)
  if t.num_query > asked:
    raise ConfigError(f"task.num_query={t.num_query}: the chapters have at most {asked} "
                      "questions; at most that")
  sx, sy = pad_rows([row for r in reading for row in _cycled(r, rows)], t.max_len, pad)
  lq = max(len(ids) - 1 for q in questions for ids, _ in q)
  qx, qy = pad_rows([row for q in questions for row in _cycled(q, asked)], lq, pad)
  n = len(chapters)
  shape = lambda a: jnp.asarray(a.reshape(n, a.shape[0] // n, -1))
  none = lambda length: jnp.zeros((0, length), jnp.int32)
  family = ReadingFamily(shape(sx), shape(sy), none(t.max_len), none(t.max_len), shape(qx),
                         shape(qy), none(lq), none(lq), t.num_query, 0,
                         tuple(range(rows)), tok.vocab_size)
  return ReadingBook(family, n, t.steps_per_chapter, t.rows_per_step, ordered=True)


def _check(config) -> None:
  t = config.task
  unknown = sorted(set(t.chapters) - set(pt.CHAPTERS))
  if unknown or not t.chapters:
    raise ConfigError(f"task.chapters {unknown or '()'}: names from {pt.CHAPTERS}")
  if not t.questions:
    raise ConfigError(f"task.questions is empty: one or both of {QUESTIONS}")


TASKS.register(TaskSpec(
    name="python_tutorial", doc="the Python tutorial's chapters read in order, questions "
    "graded by execution or cloze",
    build=build_family, kinds=("book", "episodes"), target="tokens", inputs="sequence",
    evaluator="textbook", check=_check,
    options=dict(
        directory=Option("", doc="the tutorial's sources ('': $METALEARN_PYTHON_TUTORIAL_DIR)"),
        chapters=Option(WITH_QUESTIONS, length=(1, None), choices=pt.CHAPTERS,
                        doc="chapters read, in the tutorial's order"),
        questions=Option(QUESTIONS, length=(1, None), choices=QUESTIONS,
                         doc="the kinds of question asked"),
        num_query=Option(8, ge=1, doc="questions asked per chapter and episode"),
        max_len=Option(128, ge=8, doc="support rows' length in tokens"),
        tokenizer=Option("", doc="a directory with tokenizer.json ('': one token per byte)"),
        steps_per_chapter=Option(30, ge=1, doc="the book's reading steps per chapter"),
        rows_per_step=Option(4, ge=1, doc="the book's rows per reading step"))))
