r"""Compositional regression textbooks: chapter ``c`` uses the first ``c`` basis functions.

**Basis** (shared by every book). ``C`` fixed functions of a scalar ``x``,

.. math::  \phi_j(x) = \sin(\omega_j x + \psi_j), \qquad j = 1, \dots, C,

with :math:`\omega_j \sim U[\text{freq\_range}]` and :math:`\psi_j \sim U[0, 2\pi)` drawn once
from ``basis_seed`` (the same for every book, so a representation can learn them across books).

**Book.** A book draws coefficients :math:`a_j \sim \mathcal{N}(0, \sigma_a^2)` (``coef_std``).
Chapter :math:`c` teaches the partial sum

.. math::  f_c(x) = \sum_{j \le c} a_j\, \phi_j(x) = f_{c-1}(x) + a_c\, \phi_c(x),

so each chapter adds one new term to everything the book taught before.

**Inputs carry the chapter** as a thermometer code :math:`z(c) = (\mathbb{1}[j \le c])_{j=1}^C`:
the network reads :math:`u = (x, z(c)) \in \mathbb{R}^{1+C}` and the whole book is one function

.. math::  y = f(x, z) = \sum_{j=1}^{C} a_j\, z_j\, \phi_j(x) \;(+\ \text{noise on exercises}),

linear in the book's coefficients :math:`a` over the features :math:`z_j \phi_j(x)`, which are
the same for every book. This gives the two properties a textbook needs:

* *forward transfer is possible*: chapter :math:`c` shares :math:`a_1..a_{c-1}` with chapter
  :math:`c-1`; a learner that kept what it read only has :math:`a_c` left to learn, and a
  representation that computes :math:`z_j\phi_j(x)` makes every chapter a linear regression of
  the head (the OML setting);
* *forgetting is measurable*: the code keeps earlier chapters' queries distinct from later ones
  (as the one-hot function id of OML's incremental sine regression does), so after reading
  chapter :math:`s > c`, chapter :math:`c`'s query loss still asks for :math:`f_c`: a learner
  that overwrote it loses it.

Exercises draw fresh :math:`x \sim U[\text{x\_range}]`; query sets (``Q`` fresh points per
chapter) are noise-free.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.registry import Option
from metalearn.tasks.base import TASKS, BookFamily, Episode, TaskSpec
from metalearn.tasks.textbook import (BookPrefix, SingleChapterFamily, book_prefix,
                                      chapter_of_step, check_book_model)


@functools.partial(jax.tree_util.register_dataclass, data_fields=[],
                   meta_fields=["num_chapters", "exercises_per_chapter", "batch_size",
                                "num_query", "x_range", "coef_std", "freq_range", "basis_seed",
                                "noise_std"])
@dataclasses.dataclass(frozen=True)
class TextbookRegression(BookFamily):
  """Books of compositional regression (see the module docstring for the formulas).

  Attributes:
    num_chapters: C, chapters (and basis functions).
    exercises_per_chapter: E, exercises (inner steps) per chapter.
    batch_size: b, points per exercise.
    num_query: Q, held-out query points per chapter.
    x_range: ``(low, high)`` of the uniform input distribution.
    coef_std: :math:`\\sigma_a`, scale of the book's coefficients.
    freq_range: ``(low, high)`` of the basis frequencies :math:`\\omega_j`.
    basis_seed: seed of the basis (frequencies and phases), shared by all books.
    noise_std: Gaussian noise on the exercises' targets.
  """
  num_chapters: int = 5
  exercises_per_chapter: int = 10
  batch_size: int = 10
  num_query: int = 50
  x_range: tuple[float, float] = (-5.0, 5.0)
  coef_std: float = 1.0
  freq_range: tuple[float, float] = (0.5, 2.0)
  basis_seed: int = 0
  noise_std: float = 0.0

  output_dim = 1
  primary_metric = "mse"

  @property
  def input_shape(self) -> tuple[int, ...]:
    return (1 + self.num_chapters,)

  @property
  def num_steps(self) -> int:
    """T = C * E, the exercises of a book."""
    return self.num_chapters * self.exercises_per_chapter

  def basis_parameters(self) -> tuple[np.ndarray, np.ndarray]:
    """:math:`(\\omega_j, \\psi_j)_{j=1}^C`, drawn once from ``basis_seed`` (NumPy, so the
    basis is a compile-time constant of a few floats)."""
    rng = np.random.default_rng(self.basis_seed)
    omega_C = rng.uniform(self.freq_range[0], self.freq_range[1], self.num_chapters)
    psi_C = rng.uniform(0.0, 2 * math.pi, self.num_chapters)
    return omega_C.astype(np.float32), psi_C.astype(np.float32)

  def basis(self, x: jax.Array) -> jax.Array:
    """:math:`\\phi_j(x)` for ``x [..., 1]``: ``[..., C]``."""
    omega_C, psi_C = self.basis_parameters()
    return jnp.sin(omega_C * x + psi_C)

  def chapter_code(self, chapter: jax.Array) -> jax.Array:
    """The thermometer code :math:`z(c)` of (0-based) chapter indices: ``[..., C]``."""
    return (jnp.arange(self.num_chapters) <= jnp.asarray(chapter)[..., None]).astype(
        jnp.float32)

  def encode(self, x: jax.Array, chapter: jax.Array) -> jax.Array:
    """Network inputs :math:`u = (x, z(c))` of ``x [..., 1]`` in chapters ``chapter [...]``."""
    code = jnp.broadcast_to(self.chapter_code(chapter), x.shape[:-1] + (self.num_chapters,))
    return jnp.concatenate([x, code], axis=-1)

  def target(self, coefficients: jax.Array, u: jax.Array) -> jax.Array:
    """:math:`\\sum_j a_j z_j \\phi_j(x)` of encoded inputs ``u [..., 1 + C]``: ``[..., 1]``."""
    features = u[..., 1:] * self.basis(u[..., :1])
    return jnp.sum(features * coefficients, axis=-1, keepdims=True)

  def _coefficients(self, key: jax.Array) -> jax.Array:
    return self.coef_std * jax.random.normal(key, (self.num_chapters,))

  def _points(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.uniform(key, shape + (1,), minval=self.x_range[0],
                              maxval=self.x_range[1])

  def sample(self, key: jax.Array) -> Episode:
    """A book: ``support [T, b, 1 + C]`` exercises in order, ``query [C, Q, 1 + C]``."""
    k_coef, k_x, k_query, k_noise = jax.random.split(key, 4)
    coefficients = self._coefficients(k_coef)
    steps = chapter_of_step(self.num_chapters, self.exercises_per_chapter)
    u_TB = self.encode(self._points(k_x, (self.num_steps, self.batch_size)), steps[:, None])
    y_TB = self.target(coefficients, u_TB)
    y_TB = y_TB + self.noise_std * jax.random.normal(k_noise, y_TB.shape)
    chapters = jnp.arange(self.num_chapters)
    u_CQ = self.encode(self._points(k_query, (self.num_chapters, self.num_query)),
                       chapters[:, None])
    return Episode(u_TB, y_TB, u_CQ, self.target(coefficients, u_CQ),
                   {"coefficients": coefficients, "chapter_of_step": steps})

  def sample_chapter(self, key: jax.Array, chapter: jax.Array, num_support: int,
                     num_query: int) -> Episode:
    """Chapter ``chapter`` of a fresh book: ``support [K, 1 + C]``, ``query [Q, 1 + C]``."""
    k_coef, k_x, k_noise = jax.random.split(key, 3)
    coefficients = self._coefficients(k_coef)
    u_N = self.encode(self._points(k_x, (num_support + num_query,)), chapter)
    y_N = self.target(coefficients, u_N)
    noise = self.noise_std * jax.random.normal(k_noise, (num_support, 1))
    return Episode(u_N[:num_support], y_N[:num_support] + noise, u_N[num_support:],
                   y_N[num_support:], {"coefficients": coefficients, "chapter": chapter})

  def single_chapter_family(self, num_support: int | None = None,
                            num_query: int | None = None) -> SingleChapterFamily:
    """Single tasks from uniformly chosen chapters (default ``K = E * b``, the data a chapter's
    exercises hold, and ``Q`` query points)."""
    return SingleChapterFamily(
        self, num_support or self.exercises_per_chapter * self.batch_size,
        num_query or self.num_query)

  @property
  def task_space(self) -> tuple[str, int]:
    """A teacher's arms: how many chapters a book has (:func:`book_prefix`)."""
    return ("discrete", self.num_chapters)

  def at_task(self, arm: jax.Array) -> BookPrefix:
    """Books cut to their first ``arm + 1`` chapters (a teacher's choice; same shapes)."""
    return book_prefix(self, arm)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(predictions - targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    mse = self.loss(predictions, targets)
    return {"mse": mse, "loss": mse}


TASKS.register(TaskSpec(
    name="textbook_regression", doc="compositional regression books: chapter c sums the "
    "first c basis functions",
    build=lambda t, split: TextbookRegression(
        t.num_chapters, t.exercises_per_chapter, t.batch_size, t.num_query, tuple(t.x_range),
        t.coef_std, tuple(t.freq_range), t.basis_seed, t.noise_std),
    kinds=("book", "episodes"), target="regression", evaluator="textbook",
    steerable={"book": "discrete"}, check=check_book_model,
    steps=lambda t: t.num_chapters * t.exercises_per_chapter,
    options=dict(
        num_chapters=Option(5, ge=1, doc="C, chapters (and basis functions)"),
        exercises_per_chapter=Option(10, ge=1, doc="E, exercises per chapter"),
        batch_size=Option(10, ge=1, doc="b, examples per exercise"),
        num_query=Option(50, ge=1, doc="Q, held-out query points per chapter"),
        x_range=Option((-5.0, 5.0), length=2, check=lambda r: r[0] < r[1],
                       accepts="(low, high) with low < high", doc="input range"),
        coef_std=Option(1.0, gt=0, doc="sigma_a, the coefficients' scale"),
        freq_range=Option((0.5, 2.0), length=2, check=lambda r: 0 < r[0] <= r[1],
                          accepts="(low, high), 0 < low <= high",
                          doc="range of the basis frequencies"),
        basis_seed=Option(0, ge=0, lt=2**32, doc="seed of the shared basis"),
        noise_std=Option(0.0, ge=0, doc="noise on the exercises' targets"))))
