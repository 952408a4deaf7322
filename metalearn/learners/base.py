"""The learner contract shared by every kind of learner, and the learner registry.

A learner turns meta-parameters ``theta`` and a task into a learning curve. A *stepwise*
learner is described by pure functions; :func:`metalearn.unroll.unroll` scans ``step`` and
records ``query_loss`` after each step, so the curve has ``T + 1`` entries: the loss before
learning, then after each of the ``T`` inner steps. A *one-pass* learner (``one_pass = True``,
in-context learners) gives its whole curve from :meth:`Learner.curve`.

A learner's module registers a :class:`LearnerSpec` in :data:`LEARNERS` (the config's
``learner.name``): its options, how it is built for a task family, and what it declares to the
rest of an experiment (the family kinds it learns on, the model kind it needs, its
capabilities).

Capabilities a learner may provide (:attr:`LearnerSpec.provides`; estimators and evaluators
ask for them):

* ``"stepwise"``: its curve comes from inner steps one at a time, so a truncated estimator can
  cut it into segments and carry the state;
* ``"sgd_from_init"``: its inner loop is plain SGD on every parameter of ``theta["params"]``
  at a fixed step size (Reptile's meta-update ``theta - phi_T`` applies);
* ``"reads_books"``: :meth:`Learner.reader` reads a textbook in order;
* ``"base_reference"``: it adapts a frozen base model, and its query loss gives a family that
  ``wants_reference`` the base's predictions too (``loss(predictions, targets, reference)``).
"""

import dataclasses
from typing import Any, Callable, ClassVar, Mapping

import jax
import ml_collections

from metalearn.registry import Component, Registry
from metalearn.tasks import Episode

MetaParams = Any  # a pytree
LearnerState = Any  # a pytree
CAPABILITIES = ("stepwise", "sgd_from_init", "reads_books", "base_reference")


class Learner:
  """What every learner provides (all methods pure and jittable).

  Attributes:
    one_pass: the curve comes from :meth:`curve` in one pass, not from inner steps.
    first_step_apart: :func:`~metalearn.unroll.unroll` runs the first inner step outside its
      scan. Under ``vmap`` over tasks the first step's input state is often shared (the
      meta-parameters themselves), and outside the scan's necessarily batched carry that
      step runs as one large matmul for every task. A learner whose initial state differs per
      task (a learned optimizer training each task's own network) gains nothing from it and
      sets ``False``: its step is then compiled once instead of twice.
    num_inner_steps: T, the inner steps of its meta-training curve (an in-context learner's
      prompt length - 1).
  """
  one_pass: ClassVar[bool] = False
  first_step_apart: ClassVar[bool] = True
  num_inner_steps: int

  def init(self, key: jax.Array) -> MetaParams:
    """Fresh meta-parameters."""
    raise NotImplementedError

  def init_state(self, theta: MetaParams, episode: Episode) -> LearnerState:
    """The inner state before any learning on ``episode`` (differentiable in ``theta``)."""
    raise NotImplementedError

  def step(self, theta: MetaParams, state: LearnerState, episode: Episode) -> LearnerState:
    """One inner learning step on the episode's support set."""
    raise NotImplementedError

  def query_loss(self, theta: MetaParams, state: LearnerState, episode: Episode) -> jax.Array:
    """Scalar loss on the episode's query set in the current state."""
    raise NotImplementedError

  def predict(self, theta: MetaParams, state: LearnerState, x: jax.Array) -> jax.Array:
    """Predictions for inputs ``x`` in the current state."""
    raise NotImplementedError

  def curve(self, theta: MetaParams, episode: Episode) -> jax.Array:
    """The whole learning curve ``[T + 1]`` in one pass (one-pass learners)."""
    raise TypeError(f"{type(self).__name__} is stepwise: its curve comes from "
                    "metalearn.unroll.unroll")

  def reader(self, book) -> "Learner":
    """The learner that reads ``book`` in order with this learner's meta-parameters (a
    :class:`~metalearn.learners.sequential.SequentialLearner`), for learners that provide
    ``"reads_books"``."""
    raise TypeError(f"{type(self).__name__} cannot read textbooks")

  def export_files(self, theta: MetaParams, directory) -> dict[str, str]:
    """Writes files other tools read beside the exported meta-parameters (adapters in PEFT
    format, say) into ``directory``: ``{what: relative path}``. None by default."""
    del theta, directory
    return {}

  def describe(self) -> dict:
    """A small JSON-able summary for reports."""
    return {"learner": type(self).__name__, "num_inner_steps": self.num_inner_steps}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearnerSpec(Component):
  """A registered learner.

  Attributes:
    build: ``(config, family) -> Learner`` from the whole (validated) config and the family
      (already taken as one of ``families``).
    families: the task-family kinds it learns on, in order of preference (a family offering
      several is taken as the first one listed here).
    model: the model kind it needs (``"network"``, ``"sequence"``), or ``None``: none
      (``model.name='none'``).
    targets: the family targets it handles (``None``: any).
    provides: capabilities (see the module docstring).
    needs: capabilities it needs from the estimator (e.g. ``"reptile_update"``).
    horizon: ``config -> T``, its inner steps without building it (``None``:
      ``learner.num_inner_steps``).
    eval_defaults: defaults it gives the evaluator's options where a config leaves them out
      (after the task's).
  """
  build: Callable[[ml_collections.ConfigDict, Any], Learner]
  families: tuple[str, ...]
  model: str | None = "network"
  targets: tuple[str, ...] | None = None
  provides: frozenset[str] = frozenset({"stepwise"})
  needs: frozenset[str] = frozenset()
  horizon: Callable[[ml_collections.ConfigDict], int] | None = None
  eval_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    unknown = set(self.provides) - set(CAPABILITIES)
    if unknown:
      raise ValueError(f"learner {self.name!r} provides unknown capabilities {sorted(unknown)}; "
                       f"known: {CAPABILITIES}")

  def inner_steps(self, config: ml_collections.ConfigDict) -> int:
    """T for ``config`` (validated), without building anything."""
    if self.horizon is not None:
      return self.horizon(config)
    return config.learner.num_inner_steps


LEARNERS: Registry[LearnerSpec] = Registry("learner", "metalearn.learners", LearnerSpec)
