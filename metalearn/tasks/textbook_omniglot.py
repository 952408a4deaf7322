r"""Omniglot textbooks: alphabets as chapters, characters learned one class at a time.

A book draws ``C`` distinct alphabets (its chapters) and ``n`` characters (classes) of each.
Class :math:`i` of chapter :math:`c` gets label :math:`c\,n + i`, so the labels range over all
:math:`C n` classes of the book and the network's head has :math:`C n` outputs: after reading
chapter :math:`c` the learner must still tell apart the classes of chapters :math:`< c`
(class-incremental learning, as in OML's sequential class learning, Javed & White 2019).

Each class contributes ``s`` support images (``num_support``) and ``q`` held-out query images
(``num_query``, never among its support images). A chapter's ``n * s`` support images are read
class by class (all of class 0's images, then class 1's, ...), in exercises of ``b``
(``batch_size``) images: ``E = n s / b`` exercises per chapter (``b = s``: one class per
exercise). The query set of chapter :math:`c` holds its ``n q`` query images.

Alphabets, not characters, are split between meta-training and evaluation: meta-train on the
alphabets of ``images_background`` (protocol ``"standard"``: 30 alphabets, 964 characters;
``"mini"``: the 5 alphabets of ``images_background_small1``) and evaluate on the held-out ones
(``images_evaluation``'s 20 alphabets; ``"mini"``: the alphabets of
``images_background_small2`` not in small1). Only alphabets with at least ``n`` characters
are used; a book needs ``C`` of them.

All sampling is ``jax.random`` on device arrays (jittable, vmappable), like
:class:`~metalearn.tasks.FewShotClassification`.
"""

import dataclasses
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from metalearn.datasets import ClassImages, load_splits
from metalearn.datasets import loading, omniglot
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, BookFamily, Episode, TaskSpec
from metalearn.tasks.textbook import SingleChapterFamily, chapter_of_step, check_book_model

SPLITS = ("train", "test")


def alphabet_of(name: str) -> str:
  """``"Greek/character03@rot90"`` -> ``"Greek"``."""
  return name.split("/")[0]


def _background_alphabets(task: ml_collections.ConfigDict) -> set[str]:
  """The alphabets of ``images_background`` (zip or extracted folder)."""
  if task.source != "zip":
    raise ValueError("textbook_omniglot with protocol 'standard' reads which alphabets are "
                     "background ones from the original archives: set task.source='zip' (and "
                     "task.data_dir / $METALEARN_OMNIGLOT_DIR), or use protocol 'mini'")
  path = omniglot.find_archive(loading.omniglot_dir(task), "train")
  if path.is_file():
    with zipfile.ZipFile(path) as z:
      names = [pathlib.PurePosixPath(n).parts for n in z.namelist() if n.endswith(".png")]
    return {parts[-3] for parts in names if len(parts) >= 3}
  return {p.parent.parent.name for p in path.rglob("*.png")}


def load_alphabet_splits(task: ml_collections.ConfigDict) -> dict[str, ClassImages]:
  """``{"train": background alphabets' characters, "test": held-out alphabets'}``.

  Reads (and caches) through :func:`metalearn.datasets.load_splits`, then regroups its
  characters by alphabet, so no alphabet has characters on both sides.
  """
  spec = ml_collections.ConfigDict(dict(
      dataset="omniglot", source=task.source, data_dir=task.data_dir, cache_dir=task.cache_dir,
      protocol=task.protocol, image_size=task.image_size, tfds_splits=("train", "test"),
      split_seed=0, num_train_classes=1, num_validation_classes=0, rotate_train=False,
      rotate_eval=False))
  splits = load_splits(spec)
  if task.protocol == "mini":
    background = {alphabet_of(n) for n in splits["train"].names}
  else:
    background = _background_alphabets(task)
  names = [n for s in splits.values() for n in s.names]
  width = max(s.images.shape[1] for s in splits.values())
  pad = lambda a: np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
  images = np.concatenate([pad(s.images) for s in splits.values()])
  counts = np.concatenate([s.counts for s in splits.values()])
  merged = ClassImages(images, counts, tuple(names))
  train = [i for i, n in enumerate(names) if alphabet_of(n) in background]
  test = [i for i, n in enumerate(names) if alphabet_of(n) not in background]
  return {"train": merged.select(train), "test": merged.select(test)}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TextbookOmniglot(BookFamily):
  """Books whose chapters are alphabets (see the module docstring).

  Attributes:
    images: ``uint8 [N, max_per_class, H, W, channels]``, the split's characters.
    counts: ``int32 [N]`` real images per character.
    alphabet_classes: ``int32 [A, max_chars]``: the characters of each usable alphabet
      (padded with 0 past ``alphabet_sizes``).
    alphabet_sizes: ``int32 [A]`` characters per alphabet.
    num_chapters: C, alphabets per book.
    num_ways: n, characters per chapter.
    num_support: s, support images per character.
    num_query: q, query images per character.
    batch_size: b, images per exercise (divides ``n * s``).
    alphabets: the names of the ``A`` usable alphabets (static).
  """
  images: jax.Array
  counts: jax.Array
  alphabet_classes: jax.Array
  alphabet_sizes: jax.Array
  num_chapters: int = dataclasses.field(default=3, metadata=dict(static=True))
  num_ways: int = dataclasses.field(default=5, metadata=dict(static=True))
  num_support: int = dataclasses.field(default=5, metadata=dict(static=True))
  num_query: int = dataclasses.field(default=5, metadata=dict(static=True))
  batch_size: int = dataclasses.field(default=5, metadata=dict(static=True))
  alphabets: tuple[str, ...] = dataclasses.field(default=(), metadata=dict(static=True))

  @classmethod
  def from_classes(cls, classes: ClassImages, num_chapters: int, num_ways: int,
                   num_support: int, num_query: int, batch_size: int) -> "TextbookOmniglot":
    """Groups ``classes`` by alphabet, keeps the alphabets with ``>= num_ways`` characters,
    checks that books of this size can be drawn, and puts the images on device."""
    if (num_ways * num_support) % batch_size:
      raise ValueError(f"task.batch_size ({batch_size}) must divide num_ways * num_support "
                       f"({num_ways} * {num_support}): a chapter's support images are read in "
                       "whole exercises")
    fewest = int(np.min(classes.counts))
    if fewest < num_support + num_query:
      raise ValueError(f"{num_support} support + {num_query} query images per character need "
                       f">= {num_support + num_query} images in every character; the smallest "
                       f"has {fewest}")
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(classes.names):
      groups.setdefault(alphabet_of(name), []).append(i)
    usable = {a: idx for a, idx in sorted(groups.items()) if len(idx) >= num_ways}
    if len(usable) < num_chapters:
      raise ValueError(f"books of {num_chapters} chapters need {num_chapters} alphabets with "
                       f">= {num_ways} characters (task.num_ways); this split has "
                       f"{len(usable)}: {sorted(usable)} of {len(groups)} alphabets. Lower "
                       "task.num_chapters or task.num_ways")
    widest = max(len(idx) for idx in usable.values())
    table = np.zeros((len(usable), widest), np.int32)
    for row, idx in enumerate(usable.values()):
      table[row, :len(idx)] = idx
    sizes = np.array([len(idx) for idx in usable.values()], np.int32)
    return cls(jnp.asarray(classes.images), jnp.asarray(classes.counts), jnp.asarray(table),
               jnp.asarray(sizes), num_chapters, num_ways, num_support, num_query, batch_size,
               tuple(usable))

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.images.shape[2:])

  @property
  def output_dim(self) -> int:
    return self.num_chapters * self.num_ways

  primary_metric = "accuracy"

  @property
  def exercises_per_chapter(self) -> int:
    return self.num_ways * self.num_support // self.batch_size

  @property
  def num_steps(self) -> int:
    """T = C * E, the exercises of a book."""
    return self.num_chapters * self.exercises_per_chapter

  def _draw(self, key: jax.Array, alphabets: jax.Array, per_class: int):
    """For alphabets ``[M]``: ``n`` distinct characters of each and ``per_class`` distinct
    images of each character: images ``[M, n, per_class, H, W, ch]`` in ``[0, 1]``, the
    characters ``[M, n]`` and image indices ``[M, n, per_class]``."""
    k_classes, k_images = jax.random.split(key)
    m, n = alphabets.shape[0], self.num_ways
    scores = jax.random.uniform(k_classes, (m, self.alphabet_classes.shape[1]))
    real = jnp.arange(scores.shape[1]) < self.alphabet_sizes[alphabets][:, None]
    _, slots = jax.lax.top_k(jnp.where(real, scores, -1.0), n)
    classes_Mn = self.alphabet_classes[alphabets[:, None], slots]
    scores = jax.random.uniform(k_images, (m, n, self.images.shape[1]))
    real = jnp.arange(scores.shape[2]) < self.counts[classes_Mn][..., None]
    _, picks = jax.lax.top_k(jnp.where(real, scores, -1.0), per_class)
    x = self.images[classes_Mn[..., None], picks].astype(jnp.float32) / 255.0
    return x, classes_Mn, picks

  def sample(self, key: jax.Array) -> Episode:
    """A book: exercises ``[T, b, H, W, ch]`` (class by class within each chapter) with labels
    ``[T, b]``; queries ``[C, n * q, H, W, ch]`` with labels ``[C, n * q]``."""
    c, n, s, q, b = (self.num_chapters, self.num_ways, self.num_support, self.num_query,
                     self.batch_size)
    k_alphabets, k_draw = jax.random.split(key)
    alphabets = jax.random.choice(k_alphabets, self.alphabet_sizes.shape[0], (c,),
                                  replace=False)
    x, classes, picks = self._draw(k_draw, alphabets, s + q)  # [C, n, s + q, H, W, ch]
    labels = (jnp.arange(c, dtype=jnp.int32)[:, None] * n
              + jnp.arange(n, dtype=jnp.int32))[:, :, None]  # [C, n, 1]
    labels = jnp.broadcast_to(labels, (c, n, s + q))
    image = x.shape[3:]
    support_x = x[:, :, :s].reshape((self.num_steps, b) + image)
    support_y = labels[:, :, :s].reshape(self.num_steps, b)
    query_x = x[:, :, s:].reshape((c, n * q) + image)
    query_y = labels[:, :, s:].reshape(c, n * q)
    info = {"chapter_of_step": chapter_of_step(c, self.exercises_per_chapter),
            "alphabets": alphabets, "classes": classes, "images": picks}
    return Episode(support_x, support_y, query_x, query_y, info)

  def sample_chapter(self, key: jax.Array, chapter: jax.Array, num_support: int,
                     num_query: int) -> Episode:
    """One alphabet as chapter ``chapter`` of a book: ``num_support`` / ``num_query`` images
    (multiples of ``n``, split evenly over its characters), labels ``chapter * n + i``."""
    n = self.num_ways
    if num_support % n or num_query % n:
      raise ValueError(f"num_support ({num_support}) and num_query ({num_query}) of a single "
                       f"chapter must be multiples of task.num_ways ({n})")
    s, q = num_support // n, num_query // n
    k_alphabet, k_draw = jax.random.split(key)
    alphabet = jax.random.randint(k_alphabet, (1,), 0, self.alphabet_sizes.shape[0])
    x, classes, picks = self._draw(k_draw, alphabet, s + q)
    x = x[0]
    labels = jnp.broadcast_to((chapter * n + jnp.arange(n, dtype=jnp.int32))[:, None],
                              (n, s + q))
    flat = lambda a: a.reshape((-1,) + a.shape[2:])
    return Episode(flat(x[:, :s]), flat(labels[:, :s]), flat(x[:, s:]), flat(labels[:, s:]),
                   {"chapter": chapter, "alphabet": alphabet[0], "classes": classes[0],
                    "images": picks[0]})

  def single_chapter_family(self, num_support: int | None = None,
                            num_query: int | None = None) -> SingleChapterFamily:
    """Single tasks from uniformly chosen chapters (default ``n * s`` support and ``n * q``
    query images: the data of one chapter of a book)."""
    n = self.num_ways
    return SingleChapterFamily(self, num_support or n * self.num_support,
                               num_query or n * self.num_query)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of logits ``[M, C n]`` against int labels ``[M]``."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(predictions, targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    return {"accuracy": jnp.mean(jnp.argmax(predictions, -1) == targets),
            "loss": self.loss(predictions, targets)}


def _build(t, split: str) -> TextbookOmniglot:
  splits = load_alphabet_splits(t)
  if split not in splits:
    raise ValueError(f"textbook_omniglot has the alphabet splits {sorted(splits)}, not "
                     f"{split!r} (set eval.split)")
  return TextbookOmniglot.from_classes(splits[split], t.num_chapters, t.num_ways,
                                       t.num_support, t.num_query, t.batch_size)


def _check(config) -> None:
  t = config.task
  check_book_model(config)
  if (t.num_ways * t.num_support) % t.batch_size:
    raise ConfigError(f"task.batch_size ({t.batch_size}) must divide task.num_ways * "
                      f"task.num_support ({t.num_ways} * {t.num_support}): a chapter's "
                      "support images are read in whole exercises")
  if config.eval.get("split") not in (None, *SPLITS):
    raise ConfigError("textbook_omniglot splits alphabets into 'train' (background) and "
                      "'test' (held out): set eval.split to one of them")


TASKS.register(TaskSpec(
    name="textbook_omniglot", doc="Omniglot books: alphabets as chapters, read class by "
    "class", build=_build, kinds=("book", "episodes"), target="classification",
    inputs="image", evaluator="textbook", check=_check,
    steps=lambda t: t.num_chapters * (t.num_ways * t.num_support // t.batch_size),
    options=dict(
        source=Option("zip", choices=loading.SOURCES, doc="Omniglot from the zips or tfds"),
        data_dir=Option("", doc="where the zips are ('': $METALEARN_OMNIGLOT_DIR)"),
        cache_dir=Option("", doc="where built splits are cached"),
        protocol=Option("standard", choices=loading.PROTOCOLS, doc="which alphabets"),
        image_size=Option(28, ge=4, doc="images are resized to this square size"),
        num_chapters=Option(5, ge=1, doc="C, alphabets per book"),
        num_ways=Option(5, ge=2, doc="n, characters per chapter"),
        num_support=Option(5, ge=1, doc="s, support images per character"),
        batch_size=Option(5, ge=1, doc="b, images per exercise (divides n * s)"),
        num_query=Option(5, ge=1, doc="q, query images per character"))))
