r"""Reading a textbook in order: sequential SGD that carries its state across chapters.

A textbook episode (:mod:`metalearn.tasks.textbook`) holds ``T = C * E`` exercises in reading
order. The inner state is ``(weights, t)``: the adapted weights and the number of exercises
read. Inner step ``t`` is one SGD step on exercise ``t`` *only*,

.. math::  W_{t+1} = W_t - \alpha \odot \nabla_W\, \ell\big(f_{W_t}(X_t), Y_t\big),
           \qquad W_0 = \theta_W,

so chapter :math:`c` starts exactly where chapter :math:`c - 1` ended. ``alpha`` is
``inner_lr``, or a meta-learned per-parameter step size (Meta-SGD, ``learn_inner_lr``).

**The learning curve is the whole book.** After ``t`` steps the learner has read chapters
:math:`0..k_t` with :math:`k_t` = ``chapter_of_step[max(t - 1, 0)]``, and

.. math::  L_t = \frac{1}{k_t + 1} \sum_{c \le k_t} \ell_c(W_t),

with :math:`\ell_c` the loss on chapter :math:`c`'s held-out queries: the mean loss over
everything read so far. Its area (``mean`` / ``progress`` objectives) rewards learning each
chapter fast *and* keeping the earlier ones: forgetting raises every later :math:`L_t`.
:meth:`SequentialLearner.chapter_losses` (all :math:`\ell_c`, ``[C]``) is the ``measure`` for
``unroll`` that :mod:`metalearn.evaluators.textbook` turns into the matrix
:math:`R[s, c]`.

Two modes:

* ``"full"`` (sequential MAML): every weight adapts from the meta-learned initialisation
  :math:`\theta_W`; the meta-gradient flows through all ``T`` steps.
* ``"oml"`` (Javed & White 2019, *Meta-Learning Representations for Continual Learning*): the
  network is a representation (RLN, every layer but the last) followed by a prediction
  network (PLN, the ``head`` layer). The inner loop updates only the head, by sequential SGD
  on one exercise at a time; the RLN is fixed there and meta-learned through the head's
  updates (its weights are read from ``theta``, never carried in the state, so truncated
  estimators keep its meta-gradient on every segment). The head's initialisation is
  meta-learned too, as in the paper's regression code. The meta-objective: the paper scores
  the head after the trajectory on *fresh samples of every task seen so far* (its incremental
  sine regression: a random batch per function of the trajectory) and, for Omniglot, on
  held-out images of the trajectory's classes plus a random batch of other meta-training
  classes. Here the first part is :math:`L_t` above (every chapter read so far, on held-out
  queries); the second has no counterpart in a book, whose labels are the book's own classes,
  so it is left out. With the ``final`` objective this is the paper's meta-loss; ``mean`` /
  ``progress`` also score the curve on the way.

Meta-parameters are ``{"params": init}`` (+ ``{"inner_lr": alpha}``), the same tree as
:class:`~metalearn.learners.GradientLearner`'s, so a MAML (``"full"``) or ANIL (``"oml"``)
initialisation trained on single chapters reads whole books unchanged.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from metalearn import models
from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.learners.gradient import init_meta_params
from metalearn.registry import Option
from metalearn.tasks import TASKS, Episode

MODES = ("full", "oml")


def chapters_read_after(step: jax.Array, episode: Episode) -> jax.Array:
  """``bool [C]``: the chapters of a book episode read after ``step`` exercises (before any
  step: the first one)."""
  steps = episode.info["chapter_of_step"]
  current = steps[jnp.clip(step - 1, 0, steps.shape[0] - 1)]
  return jnp.arange(episode.query_x.shape[0]) <= current


class SequentialState(NamedTuple):
  """The inner state of a reader.

  Attributes:
    weights: the adapted weights: all parameters (``"full"``) or the head (``"oml"``).
    step: ``int32`` scalar, exercises read so far (the next one is ``support_x[step]``).
  """
  weights: Any
  step: jax.Array


@dataclasses.dataclass(frozen=True)
class SequentialLearner(Learner):
  """Reads a textbook one exercise per inner step (see the module docstring).

  Attributes:
    init_fn: ``key -> params`` of the network (its last layer is ``"head"``).
    apply_fn: ``(params, x) -> predictions``.
    loss_fn: ``(predictions, targets) -> scalar``.
    inner_lr: inner step size (the initial value of ``alpha`` when it is learned).
    mode: ``"full"`` (all weights adapt) or ``"oml"`` (only the head adapts).
    learn_inner_lr: meta-learn per-parameter step sizes (Meta-SGD).
    num_inner_steps: T = C * E, the exercises of a book.
  """
  init_fn: Callable
  apply_fn: Callable
  loss_fn: Callable
  inner_lr: float
  mode: str = "full"
  learn_inner_lr: bool = False
  num_inner_steps: int = 1

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

  def _adapted(self, params):
    return params if self.mode == "full" else params["head"]

  def params(self, theta, state: SequentialState):
    """The network's full parameters in ``state`` (``"oml"``: the fixed RLN from ``theta``
    and the state's head)."""
    if self.mode == "full":
      return state.weights
    return {**theta["params"], "head": state.weights}

  def init(self, key):
    params = self.init_fn(key)
    return init_meta_params(params, self._adapted(params), self.inner_lr, self.learn_inner_lr)

  def init_state(self, theta, episode: Episode) -> SequentialState:
    del episode
    return SequentialState(self._adapted(theta["params"]), jnp.zeros((), jnp.int32))

  def start_at(self, theta, episode: Episode, step: int | jax.Array) -> SequentialState:
    """The initial weights, positioned to read exercise ``step`` next (e.g. ``c * E``: read
    chapter ``c`` alone, from scratch)."""
    state = self.init_state(theta, episode)
    return state._replace(step=jnp.asarray(step, jnp.int32))

  def step(self, theta, state: SequentialState, episode: Episode) -> SequentialState:
    """One SGD step on exercise ``state.step`` (``support_x[t]``, ``support_y[t]``) only."""
    t = jnp.minimum(state.step, episode.support_x.shape[0] - 1)
    x, y = episode.support_x[t], episode.support_y[t]

    def exercise_loss(weights):
      return self.loss_fn(self.apply_fn(self.params(theta, state._replace(weights=weights)),
                                        x), y)

    grads = jax.grad(exercise_loss)(state.weights)
    if self.learn_inner_lr:
      weights = jax.tree.map(lambda w, g, a: w - a * g, state.weights, grads, theta["inner_lr"])
    else:
      weights = jax.tree.map(lambda w, g: w - self.inner_lr * g, state.weights, grads)
    if "active_chapters" in episode.info:  # a book cut short (BookPrefix): stop reading
      reading = episode.info["chapter_of_step"][t] < episode.info["active_chapters"]
      weights = jax.tree.map(lambda new, old: jnp.where(reading, new, old), weights,
                             state.weights)
    return SequentialState(weights, state.step + 1)

  def predict(self, theta, state: SequentialState, x: jax.Array) -> jax.Array:
    return self.apply_fn(self.params(theta, state), x)

  def chapter_predictions(self, theta, state: SequentialState, episode: Episode) -> jax.Array:
    """Predictions on every chapter's queries, ``[C, Q, ...]`` (each chapter one batch)."""
    return jax.vmap(lambda x: self.predict(theta, state, x))(episode.query_x)

  def chapter_losses(self, theta, state: SequentialState, episode: Episode) -> jax.Array:
    """:math:`\\ell_c`, the loss on each chapter's queries: ``[C]`` (a ``measure`` for
    :func:`metalearn.unroll.unroll`)."""
    return jax.vmap(self.loss_fn)(self.chapter_predictions(theta, state, episode),
                                  episode.query_y)

  def chapters_read(self, state: SequentialState, episode: Episode) -> jax.Array:
    """``bool [C]``: the chapters read so far (before any step: the first one)."""
    read = chapters_read_after(state.step, episode)
    if "active_chapters" in episode.info:  # a book cut short: the chapters past it never count
      read &= jnp.arange(episode.query_x.shape[0]) < episode.info["active_chapters"]
    return read

  def query_loss(self, theta, state: SequentialState, episode: Episode) -> jax.Array:
    """:math:`L_t`: the mean of :math:`\\ell_c` over the chapters read so far."""
    read = self.chapters_read(state, episode)
    losses_C = self.chapter_losses(theta, state, episode)
    return jnp.sum(jnp.where(read, losses_C, 0.0)) / jnp.sum(read)

  def reader(self, book) -> "SequentialLearner":
    return dataclasses.replace(self, loss_fn=book.loss, num_inner_steps=book.num_steps)

  def describe(self) -> dict:
    return {"learner": type(self).__name__, "mode": self.mode,
            "num_inner_steps": self.num_inner_steps,
            "inner_lr": "meta-learned" if self.learn_inner_lr else self.inner_lr}


def _builder(mode: str):
  def build(config, book) -> SequentialLearner:
    network = models.make(config.model, book.input_shape, book.output_dim)
    return SequentialLearner(network.init_fn, network.apply_fn, book.loss,
                             config.learner.inner_lr, mode, config.learner.learn_inner_lr,
                             num_inner_steps=book.num_steps)
  return build


OPTIONS = dict(inner_lr=Option(0.01, gt=0, doc="the inner SGD step size (its initial value "
                                               "with learn_inner_lr)"),
               learn_inner_lr=Option(False, doc="meta-learn per-parameter step sizes"))
for _name, _mode, _doc in (
    ("sequential", "full", "reads a textbook in order, every weight adapting (sequential "
     "MAML)"),
    ("oml", "oml", "reads a textbook in order, only the head adapting (OML, Javed & White "
     "2019)")):
  LEARNERS.register(LearnerSpec(
      name=_name, doc=_doc, build=_builder(_mode), families=("book",), model="network",
      targets=("regression", "classification"),
      provides=frozenset({"stepwise", "reads_books"}), options=OPTIONS,
      horizon=lambda config: TASKS.get(config.task.name).steps(config.task)))
