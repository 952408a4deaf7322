"""Prompt families for in-context learners: a task is a sequence of examples to read.

An in-context task is one *prompt* ``(x_1, y_1), ..., (x_N, y_N)`` drawn from one function; the
learner predicts each ``y_k`` from ``x_k`` and the ``k - 1`` examples before it, so its learning
curve (loss against the number of examples read) comes from one causal pass. Episodes carry the
prompt as ``support_x`` ``[N, D]`` / ``support_y`` ``[N]`` and empty query arrays.

:class:`RegressionPrompts` draws Garg et al. (2022)'s function classes,

* ``linear``: ``y = w.x``, ``w ~ N(0, I_D)``;
* ``sparse_linear``: ``w`` with ``sparsity`` non-zero ``N(0, 1)`` entries;
* ``relu_net``: ``y = sqrt(2/H) sum_j a_j relu(w_j.x)``, ``H = 100``, all weights ``N(0, 1)``;
* ``decision_tree``: depth 4, each node splits on the sign of a random coordinate, leaves
  ``N(0, 1)``;
* ``linear_pool``: Raventos et al. (2023): ``w`` uniform from a fixed pool of ``pool_size``
  ``N(0, I_D)`` vectors (drawn once from ``pool_seed``), ``y = w.x + noise_std * eps``;

with ``x ~ N(0, I_D)`` (``x_dist='normal'``) or ``U(-0.5, 0.5)^D`` (von Oswald et al. 2023).
Losses are squared errors divided by the prior variance of ``y`` (:attr:`normaliser`, at the
curriculum's active dimension), so predicting 0 scores about 1: Garg's *normalised squared
error*.

Garg's curriculum grows the active dimension and prompt length with the outer step, at fixed
array shapes (compile once): :meth:`RegressionPrompts.at_step` sets ``active_dims`` (inputs are
zero beyond them) and ``active_points`` (positions beyond it carry no loss). The trainer calls
``at_step`` inside the jitted outer step when a family has it.

:class:`ProjectedClassification` is GPICL (Kirsch et al. 2022): a task is a random linear
projection of a base dataset's inputs plus a random permutation of its labels; task ``t`` of
``num_tasks`` is fixed by ``fold_in(task_seed, t)``, so a small ``num_tasks`` can be memorised
and a large one must be learned in context. ``num_tasks = 0`` draws a fresh task every time
(unseen tasks for evaluation).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, Episode, PromptFamily, TaskSpec

FUNCTION_CLASSES = ("linear", "sparse_linear", "relu_net", "decision_tree", "linear_pool")
X_DISTS = ("normal", "uniform")


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["pool_w", "active_dims", "active_points", "x_transform"],
                   meta_fields=["function_class", "dim", "num_points", "noise_std", "x_dist",
                                "sparsity", "hidden", "depth", "pool_size", "curriculum"])
@dataclasses.dataclass(frozen=True)
class RegressionPrompts(PromptFamily):
  """Prompts of one function class (see the module docstring).

  Attributes:
    function_class: one of :data:`FUNCTION_CLASSES`.
    dim: D, input dimension.
    num_points: N, examples per prompt.
    noise_std: label noise added to every ``y``.
    x_dist: ``'normal'`` or ``'uniform'`` (``U(-0.5, 0.5)``).
    sparsity / hidden / depth: sizes of sparse_linear, relu_net, decision_tree.
    pool_size: M for ``linear_pool``.
    curriculum: ``(dims_start, dims_step, points_start, points_step, interval)`` or ``()``:
      every ``interval`` outer steps the active dimension grows by ``dims_step`` and the
      prompt length by ``points_step``, up to ``dim`` / ``num_points`` (Garg: 5, 1, 11, 2, 2000).
    pool_w: ``[M, D]`` the pool of ``linear_pool`` (``[0, D]`` otherwise).
    active_dims / active_points: the curriculum's current sizes (``int32`` scalars).
    x_transform: ``[D, D]``, inputs are ``x @ x_transform`` (the identity; the
      out-of-distribution prompts of :meth:`out_of_distribution` scale or skew them).
  """
  function_class: str
  dim: int
  num_points: int
  noise_std: float = 0.0
  x_dist: str = "normal"
  sparsity: int = 3
  hidden: int = 100
  depth: int = 4
  pool_size: int = 0
  curriculum: tuple = ()
  pool_w: jax.Array | None = None
  active_dims: jax.Array | None = None
  active_points: jax.Array | None = None
  x_transform: jax.Array | None = None

  is_classification = False
  primary_metric = "nse"
  num_classes = 0
  output_dim = 1

  @classmethod
  def create(cls, function_class: str, dim: int, num_points: int, *, pool_seed: int = 0,
             **kwargs) -> "RegressionPrompts":
    """The family with its pool drawn from ``pool_seed`` and the curriculum at step 0."""
    if function_class not in FUNCTION_CLASSES:
      raise ValueError(f"unknown function class {function_class!r}; choose one of "
                       f"{FUNCTION_CLASSES}")
    pool_size = kwargs.get("pool_size", 0)
    if function_class == "linear_pool" and pool_size < 1:
      raise ValueError("function_class='linear_pool' needs pool_size >= 1")
    pool = (np.random.default_rng(pool_seed).standard_normal((pool_size, dim)).astype(np.float32)
            if function_class == "linear_pool" else np.zeros((0, dim), np.float32))
    fam = cls(function_class, dim, num_points, pool_w=jnp.asarray(pool),
              active_dims=jnp.int32(dim), active_points=jnp.int32(num_points),
              x_transform=jnp.eye(dim), **kwargs)
    return fam.at_step(0) if fam.curriculum else fam

  @property
  def input_shape(self):
    return (self.dim,)

  @property
  def normaliser(self) -> float:
    """Prior variance of the noiseless ``y`` at full dimension (Garg's error normaliser;
    ``x_dist='uniform'`` inputs have variance 1/12)."""
    return self._variance(self.dim)

  def _variance(self, dims):
    if self.function_class == "decision_tree":
      return 1.0
    x_var = 1.0 if self.x_dist == "normal" else 1.0 / 12.0
    if self.function_class == "sparse_linear":
      return x_var * jnp.minimum(self.sparsity, dims)
    return x_var * dims

  def at_step(self, step) -> "RegressionPrompts":
    """The family at outer step ``step`` of its curriculum (itself without one)."""
    if not self.curriculum:
      return self
    d0, dd, n0, dn, every = self.curriculum
    k = jnp.asarray(step, jnp.int32) // every
    return dataclasses.replace(self, active_dims=jnp.minimum(d0 + dd * k, self.dim),
                               active_points=jnp.minimum(n0 + dn * k, self.num_points))

  task_space = ("box", 2)

  def at_task(self, task_2) -> "RegressionPrompts":
    """The family at a teacher's task ``u`` in the unit square (:mod:`metalearn.curriculum`):
    ``active_dims = 1 + round(u_0 (dim - 1))``, ``active_points = 2 + round(u_1 (num_points -
    2))``: the two difficulty axes of Garg et al.'s curriculum, chosen by a teacher instead of
    a schedule (same shapes: compiles once)."""
    u = jnp.clip(jnp.asarray(task_2, jnp.float32), 0.0, 1.0)
    dims = 1 + jnp.round(u[0] * (self.dim - 1)).astype(jnp.int32)
    points = 2 + jnp.round(u[1] * (self.num_points - 2)).astype(jnp.int32)
    return dataclasses.replace(self, active_dims=dims, active_points=points)

  def out_of_distribution(self, kind: str, seed: int = 0) -> "RegressionPrompts":
    """Garg et al.'s distribution shifts at evaluation: ``scaled_x`` (inputs x2),
    ``skewed_covariance`` (``x ~ N(0, S)``, eigenvalues of ``S`` proportional to ``1/i^2``,
    trace ``D``, random eigenbasis from ``seed``) or ``noisy_labels`` (label noise std 1)."""
    if kind == "scaled_x":
      return dataclasses.replace(self, x_transform=2.0 * self.x_transform)
    if kind == "noisy_labels":
      return dataclasses.replace(self, noise_std=1.0)
    if kind == "skewed_covariance":
      eig = 1.0 / np.arange(1, self.dim + 1) ** 2
      eig *= self.dim / eig.sum()
      basis = np.linalg.qr(np.random.default_rng(seed).standard_normal((self.dim,) * 2))[0]
      return dataclasses.replace(self, x_transform=jnp.asarray(
          (np.sqrt(eig)[:, None] * basis.T).astype(np.float32)))
    raise ValueError(f"unknown out-of-distribution prompt set {kind!r}; choose one of "
                     "('scaled_x', 'skewed_covariance', 'noisy_labels')")

  def _function(self, key):
    """Task parameters and ``f(x_ND) -> y_N`` of a fresh task."""
    D = self.dim
    kw, ks, k2 = jax.random.split(key, 3)
    if self.function_class == "linear":
      w = jax.random.normal(kw, (D,))
      return {"w": w}, lambda x: x @ w
    if self.function_class == "linear_pool":
      w = self.pool_w[jax.random.randint(kw, (), 0, self.pool_size)]
      return {"w": w}, lambda x: x @ w
    if self.function_class == "sparse_linear":  # a random subset of the active coordinates
      order = jnp.where(jnp.arange(D) < self.active_dims, jax.random.uniform(ks, (D,)), 2.0)
      keep = jnp.argsort(jnp.argsort(order)) < self.sparsity
      w = jnp.where(keep, jax.random.normal(kw, (D,)), 0.0)
      return {"w": w}, lambda x: x @ w
    if self.function_class == "relu_net":
      w1, a = jax.random.normal(kw, (D, self.hidden)), jax.random.normal(k2, (self.hidden,))
      return {"w": jnp.zeros(D)}, lambda x: jnp.sqrt(2 / self.hidden) * jax.nn.relu(x @ w1) @ a
    # decision_tree: internal node i (heap order) splits on the sign of x[coord[i]]
    inner = 2 ** self.depth - 1
    coord = jax.random.randint(ks, (inner,), 0, self.active_dims)
    leaf = jax.random.normal(kw, (inner + 1,))

    def tree(x_ND):
      node = jnp.zeros(x_ND.shape[0], jnp.int32)
      for _ in range(self.depth):
        node = 2 * node + 1 + (jnp.take_along_axis(x_ND, coord[node][:, None], 1)[:, 0] > 0)
      return leaf[node - inner]
    return {"w": jnp.zeros(D)}, tree

  def sample(self, key: jax.Array) -> Episode:
    kf, kx, kn = jax.random.split(key, 3)
    shape = (self.num_points, self.dim)
    x = (jax.random.normal(kx, shape) if self.x_dist == "normal"
         else jax.random.uniform(kx, shape, minval=-0.5, maxval=0.5))
    x = jnp.where(jnp.arange(self.dim) < self.active_dims, x @ self.x_transform, 0.0)
    info, f = self._function(kf)
    y = f(x) + self.noise_std * jax.random.normal(kn, (self.num_points,))
    info = {**info, "points": self.active_points}
    return Episode(x, y, x[:0], y[:0], info)

  def prompt_loss(self, pred_N: jax.Array, y_N: jax.Array) -> jax.Array:
    """Per-position normalised squared error ``[N]`` (by the variance at the curriculum's
    active dimension, so predicting 0 scores about 1 at every stage)."""
    return jnp.square(pred_N - y_N) / self._variance(self.active_dims)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["base_x", "base_y", "task_seed"],
                   meta_fields=["num_tasks", "num_points", "num_classes"])
@dataclasses.dataclass(frozen=True)
class ProjectedClassification(PromptFamily):
  """GPICL classification prompts over a pool of base examples.

  A task draws ``A ~ N(0, 1/D)`` (``[D, D]``) and a permutation ``pi`` of the ``C`` labels; a
  prompt is ``num_points`` pool examples ``(x, c)`` shown as ``(A x, pi(c))``. The pool is
  procedural by default (:meth:`create`: Gaussian clusters around fixed unit prototypes, each
  example scaled to unit length) or a dataset's images (:meth:`from_class_images`, flattened,
  standardised, unit length), like Kirsch et al.'s MNIST.

  Attributes:
    num_tasks: how many distinct tasks (``2^n``); 0 = a fresh task per prompt (unseen tasks).
    num_points: examples per prompt.
    num_classes: C.
    base_x: ``[P, D]`` base inputs.
    base_y: ``[P]`` base labels in ``[0, C)``.
    task_seed: raw key data (``uint32[2]``) fixing the ``num_tasks`` tasks.
  """
  num_tasks: int
  num_points: int
  num_classes: int
  base_x: jax.Array
  base_y: jax.Array
  task_seed: jax.Array

  is_classification = True
  primary_metric = "accuracy"
  normaliser = 1.0

  @classmethod
  def create(cls, num_tasks: int, num_points: int, num_classes: int = 10, dim: int = 32,
             noise: float = 0.5, pool_size: int = 10_000, seed: int = 0
             ) -> "ProjectedClassification":
    """Procedural base data (``pool_size`` examples of ``num_classes`` Gaussian clusters in
    ``dim`` dimensions, spread ``noise``) and tasks, both fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((num_classes, dim))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    y = rng.integers(0, num_classes, pool_size)
    x = protos[y] + noise / np.sqrt(dim) * rng.standard_normal((pool_size, dim))
    return cls._from_pool(num_tasks, num_points, num_classes, x, y, seed)

  @classmethod
  def from_class_images(cls, classes, num_tasks: int, num_points: int, image_size: int = 8,
                        num_classes: int = 10, seed: int = 0) -> "ProjectedClassification":
    """Base data from a :class:`~metalearn.datasets.ClassImages` (its first ``num_classes``
    classes, grey, resized to ``image_size``, flattened)."""
    from metalearn.tasks.training import _pool  # the image pool of training tasks
    x, y = _pool(classes, image_size, num_classes)
    x = x.reshape(len(x), -1)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return cls._from_pool(num_tasks, num_points, int(y.max()) + 1, x, y, seed)

  @classmethod
  def _from_pool(cls, num_tasks, num_points, num_classes, x, y, seed):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return cls(num_tasks, num_points, num_classes, jnp.asarray(x, jnp.float32),
               jnp.asarray(y, jnp.int32), jax.random.key_data(jax.random.key(seed + 1)))

  def with_tasks(self, num_tasks: int) -> "ProjectedClassification":
    """The same base data and task seed with ``num_tasks`` tasks (0: fresh, unseen tasks)."""
    return dataclasses.replace(self, num_tasks=num_tasks)

  @property
  def dim(self) -> int:
    return self.base_x.shape[1]

  @property
  def output_dim(self) -> int:
    return self.num_classes

  @property
  def input_shape(self):
    return (self.dim,)

  def task(self, index: jax.Array, key: jax.Array | None = None):
    """Projection ``[D, D]`` and label permutation ``[C]`` of task ``index`` (of a fresh task
    drawn from ``key`` when ``num_tasks = 0``)."""
    seed = jax.random.wrap_key_data(self.task_seed)
    ka, kp = jax.random.split(key if self.num_tasks == 0 else jax.random.fold_in(seed, index))
    return (jax.random.normal(ka, (self.dim, self.dim)) / jnp.sqrt(self.dim),
            jax.random.permutation(kp, self.num_classes))

  def sample(self, key: jax.Array) -> Episode:
    kt, ki = jax.random.split(key)
    index = (jnp.int32(-1) if self.num_tasks == 0
             else jax.random.randint(kt, (), 0, self.num_tasks))
    proj, perm = self.task(index, kt)
    idx = jax.random.randint(ki, (self.num_points,), 0, self.base_x.shape[0])
    x, y = self.base_x[idx] @ proj, perm[self.base_y[idx]]
    info = {"points": jnp.int32(self.num_points), "task": index, "base_index": idx}
    return Episode(x, y, x[:0], y[:0], info)

  def prompt_loss(self, logits_NC: jax.Array, y_N: jax.Array) -> jax.Array:
    """Per-position cross-entropy ``[N]``."""
    return -jnp.take_along_axis(jax.nn.log_softmax(logits_NC), y_N[:, None], 1)[:, 0]


def _build_regression(t, split: str) -> RegressionPrompts:
  del split  # prompts are drawn fresh; evaluation uses its own key stream
  return RegressionPrompts.create(
      t.function_class, t.dim, t.num_points, pool_seed=t.pool_seed, noise_std=t.noise_std,
      x_dist=t.x_dist, sparsity=t.sparsity, pool_size=t.pool_size,
      curriculum=tuple(t.curriculum))


def _check_regression(config) -> None:
  t = config.task
  if t.function_class == "linear_pool" and t.pool_size < 1:
    raise ConfigError("task.function_class='linear_pool' needs task.pool_size >= 1")
  if t.curriculum and (t.curriculum[0] > t.dim or t.curriculum[2] > t.num_points):
    raise ConfigError(f"task.curriculum {tuple(t.curriculum)} starts above task.dim ({t.dim}) "
                      f"or task.num_points ({t.num_points})")
  if t.curriculum and config.objective.name == "final":
    raise ConfigError("objective.name='final' scores only the last position, which a "
                      "curriculum masks until it reaches task.num_points: use 'mean_all' or "
                      "'mean' with task.curriculum")
  if t.curriculum and config.curriculum.name:
    raise ConfigError("curriculum.name and task.curriculum (a fixed schedule) both set the "
                      "task's difficulty: set one of them (task.curriculum=() for a teacher)")


def _build_classification(t, split: str) -> ProjectedClassification:
  del split
  if t.base == "procedural":
    return ProjectedClassification.create(t.num_tasks, t.num_points, t.num_classes, t.dim,
                                          t.noise, t.pool_size, t.data_seed)
  from metalearn.datasets import tfds_images  # pylint: disable=g-import-not-at-top
  classes = tfds_images.read_classes(t.base, t.tfds_split, t.data_dir or None)
  return ProjectedClassification.from_class_images(classes, t.num_tasks, t.num_points,
                                                   t.image_size, t.num_classes, t.data_seed)


def _check_classification(config) -> None:
  t = config.task
  if t.base == "procedural" and t.pool_size < 1:
    raise ConfigError("task.pool_size must be >= 1: the procedural base data of "
                      "icl_classification are a pool of that many examples")


TASKS.register(TaskSpec(
    name="icl_regression", doc="in-context regression prompts (Garg et al. 2022; Raventos et "
    "al. 2023)", build=_build_regression, kinds=("prompts",), target="regression",
    evaluator="in_context", steerable={"prompts": "box"}, check=_check_regression,
    steps=lambda t: t.num_points - 1,
    options=dict(
        function_class=Option("linear", choices=FUNCTION_CLASSES, doc="the function class"),
        dim=Option(5, ge=1, doc="D, input dimension"),
        num_points=Option(11, ge=2, doc="N, examples per prompt"),
        noise_std=Option(0.0, ge=0, doc="label noise"),
        x_dist=Option("normal", choices=X_DISTS, doc="input distribution"),
        sparsity=Option(3, ge=1, doc="non-zero weights of sparse_linear"),
        pool_size=Option(0, ge=0, doc="M, the task pool of linear_pool"),
        pool_seed=Option(0, ge=0, lt=2**32, doc="seed of the pool"),
        curriculum=Option((), element=int, check=lambda c: len(c) in (0, 5) and all(
            v >= 0 for v in c) and (not c or c[4] >= 1), accepts="() or (dims_start, "
            "dims_step, points_start, points_step, interval >= 1)",
            doc="Garg et al.'s schedule of active dimension and prompt length"))))

TASKS.register(TaskSpec(
    name="icl_classification", doc="GPICL projected classification prompts (Kirsch et al. "
    "2022)", build=_build_classification, kinds=("prompts",), target="classification",
    evaluator="in_context", check=_check_classification,
    eval_defaults=dict(baselines=("logistic_regression",)), steps=lambda t: t.num_points - 1,
    options=dict(
        num_tasks=Option(2**8, ge=0, doc="distinct tasks (0: a fresh task per prompt)"),
        num_points=Option(50, ge=2, doc="examples per prompt"),
        num_classes=Option(10, ge=2, doc="C"),
        base=Option("procedural", check=bool, accepts="'procedural' or a tfds image dataset "
                    "name ('mnist', ...)", doc="the base data"),
        dim=Option(32, ge=1, doc="procedural base data: dimension"),
        noise=Option(0.5, ge=0, doc="procedural base data: spread of the clusters"),
        pool_size=Option(10_000, ge=0, doc="procedural base data: examples"),
        image_size=Option(8, ge=4, doc="tfds base data: images resized to this size"),
        data_dir=Option("", doc="tfds data directory"),
        tfds_split=Option("train", doc="tfds split of the base data"),
        data_seed=Option(0, ge=0, lt=2**32, doc="seed of the base data and the tasks"))))
