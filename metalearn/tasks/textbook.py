"""Textbooks: task families whose episode is a whole book, read in order.

A *textbook* family samples a book of ``C`` chapters x ``E`` exercises. Its :class:`Episode`
holds

* ``support_x [T, b, *input]`` / ``support_y [T, b, ...]``: the ``T = C * E`` exercises in
  reading order (chapter 0's ``E`` exercises first), each a small batch of ``b`` examples;
* ``query_x [C, Q, *input]`` / ``query_y [C, Q, ...]``: a held-out evaluation set per chapter;
* ``info["chapter_of_step"]``: ``int32 [T]``, the chapter of exercise ``t`` (``t // E``),

plus family-specific parameters. Chapters share structure, so what earlier chapters teach helps
later ones, and every chapter's query set stays meaningful after later chapters (so forgetting
is measurable). :class:`~metalearn.learners.sequential.SequentialLearner` reads a book one
exercise per inner step; :mod:`metalearn.evaluators.textbook` turns its per-chapter losses into
progress, forward transfer and forgetting.

Every textbook family provides ``num_chapters`` (C), ``exercises_per_chapter`` (E),
``num_steps`` (T = C * E), ``sample(key)``, ``sample_chapter(key, chapter, num_support,
num_query)`` (one chapter of a fresh book as an ordinary few-shot episode) and
``single_chapter_family()``, the :class:`SingleChapterFamily` the MAML-family learners can be
meta-trained on: single tasks drawn uniformly from the same chapters, with the same inputs and
outputs (so their meta-parameters read whole books too).
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from metalearn.registry import ConfigError
from metalearn.tasks.base import BookFamily, Episode, EpisodeFamily


def chapter_of_step(num_chapters: int, exercises_per_chapter: int) -> jax.Array:
  """``int32 [C * E]``: the chapter of each exercise, in reading order."""
  return jnp.repeat(jnp.arange(num_chapters, dtype=jnp.int32), exercises_per_chapter)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["book"],
                   meta_fields=["num_support", "num_query"])
@dataclasses.dataclass(frozen=True)
class SingleChapterFamily(EpisodeFamily):
  """Few-shot episodes from one uniformly chosen chapter of a fresh book (no sequence).

  ``sample(key)``: draws a book and a chapter ``c ~ U{0..C-1}``, then ``num_support`` support
  and ``num_query`` query examples of that chapter: ``support_x [K, *input]``,
  ``query_x [Q, *input]``; ``info["chapter"]`` is ``c``. Inputs, outputs, loss and metrics are
  the book's, so a learner meta-trained here can read the book's chapters in order.

  Attributes:
    book: the textbook family.
    num_support: K, support examples.
    num_query: Q, query examples.
  """
  book: Any
  num_support: int
  num_query: int

  @property
  def input_shape(self) -> tuple[int, ...]:
    return self.book.input_shape

  @property
  def output_dim(self) -> int:
    return self.book.output_dim

  @property
  def primary_metric(self) -> str:
    return self.book.primary_metric

  @property
  def num_chapters(self) -> int:
    return self.book.num_chapters

  def sample(self, key: jax.Array) -> Episode:
    k_chapter, k_data = jax.random.split(key)
    chapter = jax.random.randint(k_chapter, (), 0, self.book.num_chapters)
    return self.book.sample_chapter(k_data, chapter, self.num_support, self.num_query)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return self.book.loss(predictions, targets)

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    return self.book.metrics(predictions, targets)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["book", "active_chapters"],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class BookPrefix(BookFamily):
  """The first ``active_chapters`` chapters of each book: what a teacher steering a textbook
  (``at_task``) assigns. Shapes stay the book's (compile once): episodes carry
  ``info["active_chapters"]`` and a :class:`~metalearn.learners.sequential.SequentialLearner`
  stops reading (and stops scoring chapters) past them, so its curve is flat from there on.
  Every other attribute is the book's.

  Attributes:
    book: the textbook family.
    active_chapters: ``int32`` scalar in ``[1, C]``.
  """
  book: Any
  active_chapters: jax.Array

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    return getattr(self.book, name)

  num_chapters = property(lambda self: self.book.num_chapters)
  exercises_per_chapter = property(lambda self: self.book.exercises_per_chapter)
  num_steps = property(lambda self: self.book.num_steps)
  input_shape = property(lambda self: self.book.input_shape)
  output_dim = property(lambda self: self.book.output_dim)
  primary_metric = property(lambda self: self.book.primary_metric)
  task_space = property(lambda self: self.book.task_space)

  def single_chapter_family(self):
    return self.book.single_chapter_family()

  def sample(self, key: jax.Array) -> Episode:
    episode = self.book.sample(key)
    return episode._replace(info={**episode.info, "active_chapters": self.active_chapters})


def book_prefix(book, arm: jax.Array) -> BookPrefix:
  """A teacher's arm ``a`` (``int32`` in ``[0, C)``) -> the book's first ``a + 1`` chapters."""
  return BookPrefix(book, jnp.clip(jnp.asarray(arm, jnp.int32) + 1, 1, book.num_chapters))


def check_book_model(config) -> None:
  """Textbooks' rule on the network: per-exercise batch statistics would tie an exercise's
  examples together (a chapter of one class at a time is then meaningless)."""
  if config.model.get("norm") == "batch":
    raise ConfigError("model.norm='batch' normalises every exercise by its own statistics "
                      f"({config.task.name} reads exercises of a few examples in order): set "
                      "model.norm to 'layer' or 'none'")
