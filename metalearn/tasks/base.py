"""Task families: pure, jittable samplers of learning problems, and their registry.

A *task family* maps a PRNG key to a task: a small learning problem. Sampling is a pure function
of the key, so a meta-batch of tasks is ``jax.vmap`` over keys and runs inside ``jit`` with the
rest of the outer step. A family is a pytree (a registered dataclass): its arrays (e.g. a
dataset's images) are leaves and its sizes static metadata, so jitted functions take the family
as an argument instead of embedding its data as compile-time constants.

Families come in four kinds (:attr:`TaskFamily.kind`), each with its own contract below:

* ``"episodes"`` (:class:`EpisodeFamily`): an :class:`Episode` with a support set the learner
  adapts on and a query set its curve is measured on (sinusoids, few-shot classification);
* ``"training"`` (:class:`TrainingFamily`): "train these parameters on this data stream", the
  inner problems of learned optimizers;
* ``"prompts"`` (:class:`PromptFamily`): prompts of examples an in-context learner reads;
* ``"book"`` (:class:`BookFamily`): a textbook of chapters read in order.

A family's module registers a :class:`TaskSpec` in :data:`TASKS`: its config options, how it is
built from a ``task`` config group, the kinds it can be taken as (a book can also be read as
single-chapter episodes, :meth:`TaskFamily.view`), what its targets are, which evaluator reads
its results and whether a teacher can steer it.
"""

import dataclasses
from typing import Any, Callable, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from metalearn.registry import Component, Registry

KINDS = ("episodes", "training", "prompts", "book")


class Episode(NamedTuple):
  """One sampled task of an ``"episodes"`` family (and of prompts and books, with their own
  array layouts).

  Attributes:
    support_x: inputs the learner adapts on, ``[K, *input_shape]``.
    support_y: targets for ``support_x`` (``[K, output_dim]`` for regression, int labels
      ``[K]`` for classification).
    query_x: held-out inputs the learning curve is measured on, ``[Q, *input_shape]``.
    query_y: targets for ``query_x``.
    info: family-specific task parameters (e.g. amplitude and phase), a dict of arrays.
  """
  support_x: jax.Array
  support_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  info: dict[str, Any]


class TaskFamily:
  """What every task family provides; the engine and the evaluators use only these members.

  Attributes:
    kind: one of :data:`KINDS` (a class attribute).
    task_space: ``None`` (a teacher cannot steer it), or ``("box", dims)`` /
      ``("discrete", n)``: what :meth:`at_task` takes.
  """
  kind: ClassVar[str] = "episodes"
  task_space: tuple[str, int] | None = None

  def sample(self, key: jax.Array):
    """Draws one task; pure and jittable."""
    raise NotImplementedError

  def at_step(self, step: jax.Array) -> "TaskFamily":
    """The family at (traced) outer step ``step``: a curriculum over outer steps returns a
    family of that step's difficulty; without one, the family itself."""
    del step
    return self

  def at_task(self, task: jax.Array) -> "TaskFamily":
    """The family at a teacher's task (a point of :attr:`task_space`)."""
    raise TypeError(f"{type(self).__name__} cannot be steered by a teacher (no task_space)")

  def view(self, kind: str) -> "TaskFamily":
    """This family taken as a family of ``kind``: itself for its own kind; other kinds are
    offered by families that declare them (a book read as single-chapter episodes)."""
    if kind == self.kind:
      return self
    raise TypeError(f"{type(self).__name__} is a {self.kind!r} family and has no {kind!r} view")

  def describe(self) -> dict:
    """A small JSON-able summary for reports: the family and its static sizes."""
    out = {"family": type(self).__name__}
    if dataclasses.is_dataclass(self):
      for f in dataclasses.fields(self):
        v = getattr(self, f.name)
        if isinstance(v, (int, float, str, bool)) or (
            isinstance(v, tuple) and all(isinstance(x, (int, float, str)) for x in v)):
          out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


class EpisodeFamily(TaskFamily):
  """Few-shot episodes: ``sample(key) -> Episode``.

  Attributes:
    input_shape: one input's shape (no batch axis).
    output_dim: regression outputs, or classes.
    primary_metric: the key of :meth:`metrics` that evaluation tables report.
    plot_range: ``(low, high)`` of 1-D inputs over which :meth:`target` can be plotted, or
      ``None``.
  """
  kind = "episodes"
  input_shape: tuple[int, ...]
  output_dim: int
  primary_metric: str
  plot_range: tuple[float, float] | None = None  # 1-D inputs of a known target function
  # True: the meta-objective's loss also takes what the learner's frozen base model predicts,
  # ``loss(predictions, targets, reference)`` (learners of a frozen base supply it)
  wants_reference: bool = False

  def target(self, info: dict, x: jax.Array) -> jax.Array:
    """The task's true function at ``x`` (families with a ``plot_range``)."""
    raise TypeError(f"{type(self).__name__} has no target function to plot")

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Scalar loss of ``predictions`` against ``targets`` (one episode, no batch axis), a mean
    over examples; a family that :attr:`wants_reference` takes ``reference=`` as well."""
    raise NotImplementedError

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Scalar evaluation metrics (one episode), including ``primary_metric`` and ``loss``."""
    raise NotImplementedError


class TrainingFamily(TaskFamily):
  """Network-training problems (see :mod:`metalearn.tasks.training`): ``sample(key) ->
  TrainingTask``, ``init_params(task)``, ``batch(task, key, split)``, ``loss(params, batch)``
  and ``apply(params, x)``; ``variant(name)`` gives an out-of-family evaluation set."""
  kind = "training"
  batch_size: int
  variants: ClassVar[tuple[str, ...]] = ()

  def init_params(self, task) -> Any:
    raise NotImplementedError

  def batch(self, task, key: jax.Array, split: str) -> Any:
    raise NotImplementedError

  def loss(self, params: Any, batch: Any) -> jax.Array:
    raise NotImplementedError

  def apply(self, params: Any, x: jax.Array) -> jax.Array:
    raise NotImplementedError

  def variant(self, name: str, config: ml_collections.ConfigDict) -> "TrainingFamily":
    """The family changed as out-of-family evaluation set ``name`` (one of :attr:`variants`)."""
    raise ValueError(f"{type(self).__name__} has no evaluation variant {name!r}; it has "
                     f"{list(self.variants)}")


class PromptFamily(TaskFamily):
  """Prompts of ``num_points`` examples read in context: ``sample(key) -> Episode`` with the
  whole prompt in ``support_x [N, D]`` / ``support_y [N]`` and ``info["points"]`` (how many
  positions count); ``prompt_loss(pred, y) -> [N]``."""
  kind = "prompts"
  num_points: int
  input_shape: tuple[int, ...]
  primary_metric: str
  is_classification: bool
  num_classes: int

  def prompt_loss(self, pred: jax.Array, y_N: jax.Array) -> jax.Array:
    raise NotImplementedError


class BookFamily(TaskFamily):
  """Textbooks (see :mod:`metalearn.tasks.textbook`): ``sample(key) -> Episode`` holding a
  whole book; offers the ``"episodes"`` view (single chapters) through
  :meth:`single_chapter_family`."""
  kind = "book"
  num_chapters: int
  exercises_per_chapter: int
  num_steps: int
  input_shape: tuple[int, ...]
  output_dim: int
  primary_metric: str

  def single_chapter_family(self) -> EpisodeFamily:
    raise NotImplementedError

  def view(self, kind: str) -> TaskFamily:
    if kind == "episodes":
      return self.single_chapter_family()
    return super().view(kind)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSpec(Component):
  """A registered task family.

  Attributes:
    build: ``(task_config, split) -> TaskFamily``; ``split`` is ``"train"`` for meta-training
      and ``eval.split`` for evaluation (families without splits ignore it).
    kinds: the kinds it can be taken as: its own kind first, then the views it offers.
    target: ``"regression"``, ``"classification"`` or ``None`` (a training problem's loss).
    inputs: ``"vector"``, ``"image"`` or ``"sequence"``: what a network model reads.
    evaluator: the evaluator a config gets unless ``eval.name`` says otherwise.
    steerable: ``{kind: space kind}``: taken as ``kind`` a teacher can steer it over a
      ``"box"`` or ``"discrete"`` task space.
    variants: the out-of-family evaluation sets it offers (training families).
    steps: ``task_config -> T``: the inner steps of a learner that reads a whole task (a
      book's exercises; a prompt's positions after the first), for families that set it.
    eval_defaults: defaults this task gives its evaluator's options (e.g. the baselines that
      apply to it), used where a config leaves them out.
    without_data: ``(task_config, shapes) -> TaskFamily``, for families that hold a dataset:
      the family with none of it, from the shapes an export recorded (``{"input_shape"}``;
      the rest comes from the config), which is all a learner reads of it, so an exported learner
      loads where the data are not (:func:`metalearn.load_learner`). ``None``: the family is
      built as usual (it holds no data, or draws it on the fly).
  """
  build: Callable[[ml_collections.ConfigDict, str], TaskFamily]
  kinds: tuple[str, ...]
  target: str | None = None
  inputs: str = "vector"
  evaluator: str
  steerable: Mapping[str, str] = dataclasses.field(default_factory=dict)
  variants: tuple[str, ...] = ()
  steps: Callable[[ml_collections.ConfigDict], int] | None = None
  eval_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  without_data: Callable[[ml_collections.ConfigDict, Mapping[str, Any]], TaskFamily] | None = None

  def __post_init__(self):
    unknown = set(self.kinds) - set(KINDS)
    if not self.kinds or unknown:
      raise ValueError(f"task {self.name!r}: kinds must be a non-empty tuple from {KINDS}")


TASKS: Registry[TaskSpec] = Registry("task", "metalearn.tasks", TaskSpec)


def sample_batch(family: TaskFamily, key: jax.Array, batch_size: int):
  """Draws ``batch_size`` independent tasks; every leaf gains a leading batch axis."""
  return jax.vmap(family.sample)(jax.random.split(key, batch_size))


def support_loss(loss_fn: Callable, predictions: jax.Array, targets: jax.Array,
                 info: dict[str, Any]) -> jax.Array:
  """``loss_fn`` on a support set, honouring a steered family's support mask.

  A family whose support size is steered (e.g. :meth:`metalearn.tasks.SinusoidFamily.at_task`)
  keeps its arrays at the largest size and marks the points in use with
  ``info["support_weight"]`` (``float32[K]`` of 0 and 1). The loss is then the mean over the
  marked points of the per-example loss, exactly the loss of the smaller support set:

  .. math::  L = \\sum_k w_k \\ell_k / \\max(1, \\sum_k w_k)

  (``loss_fn`` must be a mean over examples, as every family's is). Without the mask it is
  ``loss_fn(predictions, targets)``.
  """
  w = info.get("support_weight") if isinstance(info, dict) else None
  if w is None:
    return loss_fn(predictions, targets)
  per_example = jax.vmap(lambda p, y: loss_fn(p[None], y[None]))(predictions, targets)
  return jnp.sum(w * per_example) / jnp.maximum(jnp.sum(w), 1.0)
