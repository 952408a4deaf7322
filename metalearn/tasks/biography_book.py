"""Reading a chapter of the biography textbook, then answering questions about its people
(``task.name='biography_book'``): episodes for language-model learners at the scale of a
chapter.

The book is :func:`metalearn.lm.biography_book.book`: chapters of ``people_per_chapter``
disjoint people, their biographies written as the augmentation options say (``multiplicity``
biographies per person, ``permute``, ``fullname``), a question per attribute, and with
``prerequisites`` a mentor from an earlier chapter for each person of a later one. A task is one
chapter: the support set is its biographies (one row each, what a fine-tuning learner reads),
the query set ``num_query`` of its questions drawn per episode, scored on the answer's tokens
only (:class:`metalearn.tasks.biographies.BiographyFamily`'s layout and metrics: ``loss``,
``token_accuracy``, exact ``answer_accuracy``).

Chapters are split by index: the first ``num_chapters`` are ``train``, then ``eval_chapters``
each for ``validation`` and ``test``, so an evaluation reads people never read in
meta-training. With ``prerequisites`` the relation questions (``mentor``, ``mentor_city``) are
asked too; every chapter then has the same number of questions only from the second chapter on,
so chapter 0 is left out of the splits (its people are still the mentors). Text is tokenised
once on the host with ``tokenizer`` (a model directory's ``tokenizer.json``) or one token per
byte.
"""

import jax.numpy as jnp

from metalearn.lm import biography_book as bb
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, TaskSpec
from metalearn.tasks.biographies import (BiographyFamily, check_num_query, load_tokenizer,
                                         pad_rows, question_row)

SPLITS = ("train", "validation", "test")


def chapters_of(t) -> dict[str, list[bb.Chapter]]:
  """The book of task config ``t``, split by chapter index."""
  first = 1 if t.prerequisites else 0
  total = first + t.num_chapters + 2 * t.eval_chapters
  book = bb.book(total, t.people_per_chapter, t.seed,
                 bb.Augmentation(t.multiplicity, t.permute, t.fullname), t.prerequisites)
  train_end = first + t.num_chapters
  return {"train": book[first:train_end],
          "validation": book[train_end:train_end + t.eval_chapters],
          "test": book[train_end + t.eval_chapters:]}


def build_family(t, split: str) -> BiographyFamily:
  """The family of task config ``t`` on ``split``."""
  if split not in SPLITS:
    raise ConfigError(f"task 'biography_book' has splits {SPLITS}, not {split!r} (eval.split)")
  chapters = chapters_of(t)[split]
  tok = load_tokenizer(t.tokenizer)
  pad = tok.pad_id if tok.pad_id is not None else 0
  reading, questions = [], []
  for chapter in chapters:
    reading += [(tok.encode(b, bos=True), 0) for b in chapter.biographies]
    questions += [question_row(tok, qa.question, qa.answer) for qa in chapter.qa]
  longest = max(len(ids) - 1 for ids, _ in reading)
  if t.max_len and longest > t.max_len:
    raise ConfigError(f"task.max_len={t.max_len}: a biography takes {longest} tokens with this "
                      "tokenizer; raise max_len (0: the longest)")
  sx, sy = pad_rows(reading, t.max_len or longest, pad)
  qx, qy = pad_rows(questions, max(len(ids) - 1 for ids, _ in questions), pad)
  n = len(chapters)
  shape = lambda a: jnp.asarray(a.reshape(n, a.shape[0] // n, -1))
  return BiographyFamily(shape(sx), shape(sy), shape(qx), shape(qy), t.num_query,
                         tok.vocab_size)


def _check(config) -> None:
  t = config.task
  check_num_query(config, t.people_per_chapter * (
      len(bb.ATTRIBUTES) + (len(bb.RELATIONS) if t.prerequisites else 0)))


TASKS.register(TaskSpec(
    name="biography_book", doc="read a chapter of the biography textbook, answer questions "
    "about its people",
    build=build_family, kinds=("episodes",), target="tokens", inputs="sequence",
    evaluator="few_shot", check=_check,
    eval_defaults=dict(num_query=8),
    options=dict(
        num_chapters=Option(50, ge=1, doc="chapters of the train split"),
        eval_chapters=Option(10, ge=1, doc="chapters of each of validation and test"),
        people_per_chapter=Option(4, ge=1, doc="people a chapter is about (disjoint)"),
        multiplicity=Option(1, ge=1, doc="biographies per person, each written afresh"),
        permute=Option(False, doc="sentences in a random order"),
        fullname=Option(False, doc="the full name in every sentence (else the first only)"),
        prerequisites=Option(False, doc="each person has a mentor from an earlier chapter, and "
                             "is asked about them"),
        num_query=Option(8, ge=1, doc="questions asked per episode"),
        max_len=Option(0, ge=0, doc="reading rows' length in tokens (0: the longest)"),
        tokenizer=Option("", doc="a directory with tokenizer.json ('': one token per byte)"),
        seed=Option(0, ge=0, lt=2**31, doc="seed of the book"))))
