"""Network-training task families: the inner problems a learned optimizer learns to solve.

A *training task* is "train these parameters on this data stream". Its family provides four
pure functions, and a learner built on it (:class:`metalearn.learners.OptimizerLearner`) draws
a fresh batch at every inner step, so an optimizer is rewarded for making the network learn,
not for memorising a fixed set of examples::

  task   = family.sample(key)                  # TrainingTask: keys + task parameters
  params = family.init_params(task)            # the network's initial weights
  batch  = family.batch(task, key, "train")    # or "valid": a fresh draw, same distribution
  loss   = family.loss(params, batch)          # scalar

Families are frozen dataclasses registered as pytrees: sizes are static metadata, arrays (a base
dataset's images) are leaves, so a batch of tasks is ``jax.vmap(family.sample)`` over keys.

A teacher (:mod:`metalearn.curriculum`) can steer an MLP family's width and depth
(:meth:`ClassificationTraining.at_task`) without recompiling: the arrays keep the largest
shape, each task carries the width and depth it uses, and the forward pass masks the rest
(see :func:`masked_mlp_apply`), so loss and gradients are those of the smaller network.

:class:`ClassificationTraining` trains an MLP or a small conv net on

* ``gaussian_mixture``: one Gaussian cluster per class, means drawn per task;
* ``teacher``: labels from a random one-hidden-layer tanh teacher on Gaussian inputs;
* ``images``: a base dataset (:class:`metalearn.datasets.ClassImages`, e.g. Fashion-MNIST or
  Omniglot down-sampled to 8x8, like learned_optimization's ``FashionMnist8`` tasks); the
  ``train`` stream samples the dataset's first split, ``valid`` its second.
"""

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, TaskSpec, TrainingFamily

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu, "swish": jax.nn.swish}
DATA = ("gaussian_mixture", "teacher", "images")
NETWORKS = ("mlp", "conv")
SPLITS = {"train": 0, "valid": 1}


class TrainingTask(NamedTuple):
  """One sampled training problem.

  Keys are stored as raw ``uint32`` key data (:func:`jax.random.key_data`) so that tasks can
  be checkpointed and moved to the host like any array.

  Attributes:
    init_key: key data of the network's initial weights.
    data_key: key data of the batch stream (batch ``t`` of a split is ``fold_in`` of it).
    info: task parameters (class means, teacher weights, ...), a dict of arrays.
  """
  init_key: jax.Array
  data_key: jax.Array
  info: dict[str, Any]

  @classmethod
  def make(cls, init_key: jax.Array, data_key: jax.Array, info: dict) -> "TrainingTask":
    return cls(jax.random.key_data(init_key), jax.random.key_data(data_key), info)

  @property
  def init_rng(self) -> jax.Array:
    return jax.random.wrap_key_data(self.init_key)


def batch_key(task: TrainingTask, split: str, step: jax.Array) -> jax.Array:
  """The key of batch ``step`` of ``split``: every step and split draws fresh data."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
  data = jax.random.wrap_key_data(task.data_key)
  return jax.random.fold_in(jax.random.fold_in(data, SPLITS[split]), step)


def dense_init(key: jax.Array, fan_in: int, fan_out: int, scale: float) -> dict:
  """LeCun-normal weights times ``scale``, zero biases."""
  w = jax.random.normal(key, (fan_in, fan_out)) * (scale / np.sqrt(fan_in))
  return {"w": w, "b": jnp.zeros(fan_out)}


def mlp_init(key, sizes, scale: float) -> dict:
  keys = jax.random.split(key, len(sizes) - 1)
  return {f"layer_{i}": dense_init(k, a, b, scale)
          for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def mlp_apply(params: dict, x_BD: jax.Array, activation: str) -> jax.Array:
  n = len(params)
  for i in range(n):
    x_BD = x_BD @ params[f"layer_{i}"]["w"] + params[f"layer_{i}"]["b"]
    if i < n - 1:
      x_BD = ACTIVATIONS[activation](x_BD)
  return x_BD


def masked_mlp_init(key, sizes, scale: float, width: jax.Array) -> dict:
  """:func:`mlp_init` of the largest network ``sizes`` for a smaller one that uses the first
  ``width`` units of every hidden layer: layers after the first read ``width`` inputs, so their
  LeCun scale is ``scale / sqrt(width)`` (the entries read from unused units never matter)."""
  keys = jax.random.split(key, len(sizes) - 1)
  params = {}
  for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
    fan_in = a if i == 0 else width.astype(jnp.float32)
    params[f"layer_{i}"] = {"w": jax.random.normal(k, (a, b)) * (scale / jnp.sqrt(fan_in)),
                            "b": jnp.zeros(b)}
  return params


def masked_mlp_apply(params: dict, x_BD: jax.Array, activation: str, width: jax.Array,
                     depth: jax.Array) -> jax.Array:
  """The MLP ``params`` restricted to ``depth`` hidden layers of ``width`` units each.

  Units ``>= width`` of every hidden layer are zeroed after the activation, and hidden layers
  ``>= depth`` pass their input through unchanged, so the output (and every gradient) equals
  that of a ``depth``-layer, ``width``-unit MLP; the unused weights get zero gradient. Needs
  equal hidden widths (the identity skip maps a hidden layer to the next).
  """
  n = len(params)
  h = x_BD
  for i in range(n - 1):
    z = ACTIVATIONS[activation](h @ params[f"layer_{i}"]["w"] + params[f"layer_{i}"]["b"])
    z = jnp.where(jnp.arange(z.shape[-1]) < width, z, 0.0)
    h = z if i == 0 else jnp.where(i < depth, z, h)
  return h @ params[f"layer_{n - 1}"]["w"] + params[f"layer_{n - 1}"]["b"]


def _conv(x_BHWC, w_33CF, b_F):
  y = jax.lax.conv_general_dilated(x_BHWC, w_33CF, (2, 2), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y + b_F


def cross_entropy(logits_BC: jax.Array, labels_B: jax.Array) -> jax.Array:
  logp = jax.nn.log_softmax(logits_BC)
  return -jnp.mean(jnp.take_along_axis(logp, labels_B[:, None], axis=1))


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["images", "labels", "counts", "difficulty"],
                   meta_fields=["data", "network", "image_size", "num_classes", "hidden",
                                "activation", "batch_size", "init_scale", "separation"])
@dataclasses.dataclass(frozen=True)
class ClassificationTraining(TrainingFamily):
  """Train a classifier on a stream of fresh batches.

  Attributes:
    data: ``gaussian_mixture``, ``teacher`` or ``images``.
    network: ``mlp`` (hidden layers ``hidden``) or ``conv`` (one stride-2 3x3 conv per entry of
      ``hidden``, as channels, then a linear head on the flattened map).
    image_size: inputs are ``image_size x image_size x 1`` (flattened for the MLP).
    num_classes: output classes.
    hidden: layer widths (MLP) or channels (conv).
    activation: one of :data:`ACTIVATIONS`.
    batch_size: examples per batch.
    init_scale: multiplies the LeCun-normal initialisation.
    separation: ``(low, high)`` of the per-task scale of the class means (``gaussian_mixture``):
      harder tasks have closer clusters.
    images: ``[2, N, image_size, image_size, 1]`` float images of the ``images`` data (the
      train and valid pools, padded to the larger one; None otherwise).
    labels: ``[2, N]`` int labels of ``images``.
    counts: ``[2]`` int, the real examples of each pool.
    difficulty: ``None`` (the network as given), or a teacher's task ``u`` in the unit square
      (:meth:`at_task`): the width and depth of the MLP each task trains.
  """
  data: str = "gaussian_mixture"
  network: str = "mlp"
  image_size: int = 8
  num_classes: int = 10
  hidden: tuple[int, ...] = (32,)
  activation: str = "relu"
  batch_size: int = 128
  init_scale: float = 1.0
  separation: tuple[float, float] = (0.2, 0.6)
  images: jax.Array | None = None
  labels: jax.Array | None = None
  counts: jax.Array | None = None
  difficulty: jax.Array | None = None

  def __post_init__(self):
    if self.data not in DATA:
      raise ValueError(f"data must be one of {DATA}, got {self.data!r}")
    if self.network not in NETWORKS:
      raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
    if (self.data == "images") != (self.images is not None):
      raise ValueError("data='images' needs images and labels (ClassificationTraining."
                       "from_class_images); other data kinds take none")

  @classmethod
  def from_class_images(cls, train, valid, **kwargs) -> "ClassificationTraining":
    """A family over two :class:`~metalearn.datasets.ClassImages` splits sharing classes
    (e.g. a dataset's train and test images), resized to ``image_size`` (default 8) and
    standardised; at most ``num_classes`` (default 10) classes are used."""
    size, num_classes = kwargs.get("image_size", 8), kwargs.get("num_classes", 10)
    pools = [_pool(c, size, num_classes) for c in (train, valid)]
    counts = [len(p[1]) for p in pools]
    if min(counts) == 0:
      raise ValueError(f"an image pool is empty (train {counts[0]}, valid {counts[1]} examples)")
    n = max(counts)
    pad = lambda a: np.concatenate([a, np.zeros((n - len(a),) + a.shape[1:], a.dtype)])
    mean, std = pools[0][0].mean(), pools[0][0].std() + 1e-6
    images = np.stack([pad((p[0] - mean) / std) for p in pools])
    return cls(data="images", images=jnp.asarray(images, jnp.float32),
               labels=jnp.asarray(np.stack([pad(p[1]) for p in pools]), jnp.int32),
               counts=jnp.asarray(counts, jnp.int32), **kwargs)

  variants = ("wider", "deeper", "other_data", "omniglot_data")

  def variant(self, name: str, config: ml_collections.ConfigDict) -> "ClassificationTraining":
    """Out-of-family evaluation sets: ``wider`` (4x widths) or ``deeper`` (two more layers)
    networks, ``other_data`` (teacher labels for a family trained on Gaussian mixtures and vice
    versa), ``omniglot_data`` (Omniglot characters at 8x8, each character's drawings split 14
    train / 6 valid; from ``$METALEARN_OMNIGLOT_DIR``)."""
    if name == "wider":
      return dataclasses.replace(self, hidden=tuple(4 * w for w in self.hidden))
    if name == "deeper":
      return dataclasses.replace(self, hidden=self.hidden + self.hidden[-1:] * 2)
    if name == "other_data":
      other = "gaussian_mixture" if self.data == "teacher" else "teacher"
      return dataclasses.replace(self, data=other, images=None, labels=None, counts=None)
    if name == "omniglot_data":
      return self._omniglot()
    return super().variant(name, config)

  def _omniglot(self) -> "ClassificationTraining":
    from metalearn.datasets import loading  # pylint: disable=g-import-not-at-top
    task = ml_collections.ConfigDict(TASKS.get("few_shot").defaults())
    task.protocol, task.image_size = "mini", 28
    classes = loading.load_splits(task)["train"]
    n = self.num_classes
    train = dataclasses.replace(classes.select(range(n)), images=classes.images[:n, :14],
                                counts=np.minimum(classes.counts[:n], 14))
    valid = dataclasses.replace(classes.select(range(n)), images=classes.images[:n, 14:],
                                counts=np.maximum(classes.counts[:n] - 14, 0))
    return ClassificationTraining.from_class_images(
        train, valid, network=self.network, image_size=self.image_size, num_classes=n,
        hidden=self.hidden, activation=self.activation, batch_size=self.batch_size,
        init_scale=self.init_scale)

  @property
  def input_dim(self) -> int:
    return self.image_size * self.image_size

  task_space = ("box", 2)

  @property
  def min_width(self) -> int:
    """The narrowest width a teacher can pick: an eighth of the largest, at least 1."""
    return max(1, self.hidden[0] // 8) if self.hidden else 1

  def at_task(self, task_2) -> "ClassificationTraining":
    r"""The family at a teacher's task ``u`` in the unit square: every task trains an MLP of

    .. math::  \text{width} = \operatorname{round}\big(w_{\min} (W / w_{\min})^{u_0}\big),
               \qquad \text{depth} = 1 + \operatorname{round}\big(u_1 (D - 1)\big)

    where ``W`` is the (equal) width of ``hidden``, ``D = len(hidden)`` and ``w_min`` is
    :attr:`min_width`: geometric in width like learned_optimization's parametric tasks, the
    network as given at ``u = 1``. Shapes stay those of the largest network (one compile);
    see :func:`masked_mlp_apply`. A learned optimizer's per-tensor statistics see the unused
    entries as zeros: that, not the loss, is where a steered task differs from a small one.
    """
    if self.network != "mlp" or not self.hidden or len(set(self.hidden)) != 1:
      raise ValueError(f"a teacher steers the width and depth of an MLP with equal hidden widths; "
                       f"this family has network={self.network!r}, hidden={self.hidden} (set "
                       "task.network='mlp' and task.hidden to equal widths, e.g. (64, 64))")
    return dataclasses.replace(self, difficulty=jnp.clip(jnp.asarray(task_2, jnp.float32),
                                                         0.0, 1.0))

  def _architecture(self) -> dict[str, jax.Array]:
    u, w_max, w_min = self.difficulty, self.hidden[0], self.min_width
    width = jnp.round(w_min * (w_max / w_min) ** u[0]).astype(jnp.int32)
    depth = 1 + jnp.round(u[1] * (len(self.hidden) - 1)).astype(jnp.int32)
    return {"width": jnp.clip(width, w_min, w_max), "depth": depth}

  def sample(self, key: jax.Array) -> TrainingTask:
    k_init, k_data, k_info = jax.random.split(key, 3)
    info = {}
    if self.data == "gaussian_mixture":
      k_mean, k_sep = jax.random.split(k_info)
      sep = jax.random.uniform(k_sep, (), minval=self.separation[0], maxval=self.separation[1])
      info["means"] = sep * jax.random.normal(k_mean, (self.num_classes, self.input_dim))
    elif self.data == "teacher":
      info["teacher"] = mlp_init(k_info, (self.input_dim, 32, self.num_classes), 3.0)
    if self.difficulty is not None:
      info["architecture"] = self._architecture()
    return TrainingTask.make(k_init, k_data, info)

  def init_params(self, task: TrainingTask) -> dict:
    sizes = (self.input_dim, *self.hidden, self.num_classes)
    if "architecture" in task.info:  # a steered task: the largest shapes, scaled for its own
      return masked_mlp_init(task.init_rng, sizes, self.init_scale,
                             task.info["architecture"]["width"])
    if self.network == "mlp":
      return mlp_init(task.init_rng, sizes, self.init_scale)
    keys = jax.random.split(task.init_rng, len(self.hidden) + 1)
    params, channels, size = {}, 1, self.image_size
    for i, (k, c) in enumerate(zip(keys, self.hidden)):
      w = jax.random.normal(k, (3, 3, channels, c)) * (self.init_scale / np.sqrt(9 * channels))
      params[f"conv_{i}"] = {"w": w, "b": jnp.zeros(c)}
      channels, size = c, -(-size // 2)
    params["head"] = dense_init(keys[-1], size * size * channels, self.num_classes,
                                self.init_scale)
    return params

  def batch(self, task: TrainingTask, key: jax.Array, split: str) -> tuple:
    """``(x [B, image_size, image_size, 1], labels [B])``; a steered task's batch also carries
    its ``architecture`` (``{"width", "depth"}``) for :meth:`loss`."""
    x, y = self._examples(task, key, split)
    if "architecture" in task.info:
      return x, y, task.info["architecture"]
    return x, y

  def _examples(self, task: TrainingTask, key: jax.Array, split: str):
    B, D = self.batch_size, self.input_dim
    k_y, k_x = jax.random.split(key)
    if self.data == "images":
      s = SPLITS[split]
      idx = jax.random.randint(k_x, (B,), 0, self.counts[s])
      return self.images[s, idx], self.labels[s, idx]
    if self.data == "gaussian_mixture":
      y = jax.random.randint(k_y, (B,), 0, self.num_classes)
      x = task.info["means"][y] + jax.random.normal(k_x, (B, D))
    else:
      x = jax.random.normal(k_x, (B, D))
      y = jnp.argmax(mlp_apply(task.info["teacher"], x, "tanh"), axis=-1)
    return x.reshape(B, self.image_size, self.image_size, 1), y

  def apply(self, params: dict, x: jax.Array, architecture: dict | None = None) -> jax.Array:
    """Logits ``[B, num_classes]`` (of the MLP ``architecture`` picks, when given)."""
    if architecture is not None:
      return masked_mlp_apply(params, x.reshape(x.shape[0], -1), self.activation,
                              architecture["width"], architecture["depth"])
    if self.network == "mlp":
      return mlp_apply(params, x.reshape(x.shape[0], -1), self.activation)
    act = ACTIVATIONS[self.activation]
    for i in range(len(self.hidden)):
      x = act(_conv(x, params[f"conv_{i}"]["w"], params[f"conv_{i}"]["b"]))
    x = x.reshape(x.shape[0], -1)
    return x @ params["head"]["w"] + params["head"]["b"]

  def loss(self, params: dict, batch) -> jax.Array:
    x, y, *architecture = batch
    return cross_entropy(self.apply(params, x, *architecture), y)


def _pool(classes, size: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """All images of the first ``num_classes`` classes in ``[0, 1]``, resized to ``size`` and
  grey-scaled, shuffled, with their labels."""
  xs, ys = [], []
  for label in range(min(num_classes, classes.num_classes)):
    imgs = classes.images[label, :classes.counts[label]].astype(np.float32) / 255.0
    resized = jax.image.resize(jnp.asarray(imgs), (len(imgs), size, size, imgs.shape[-1]),
                               "linear")
    xs.append(np.asarray(resized).mean(-1, keepdims=True))
    ys.append(np.full(len(imgs), label, np.int32))
  order = np.random.default_rng(0).permutation(sum(len(y) for y in ys))
  return np.concatenate(xs)[order], np.concatenate(ys)[order]


def _build(t, split: str) -> ClassificationTraining:
  del split  # a training task's own train / valid streams are its splits
  kwargs = dict(network=t.network, image_size=t.image_size, num_classes=t.num_classes,
                hidden=tuple(t.hidden), activation=t.activation, batch_size=t.batch_size,
                init_scale=t.init_scale, separation=tuple(t.separation))
  if t.data != "images":
    return ClassificationTraining(data=t.data, **kwargs)
  from metalearn.datasets import tfds_images  # pylint: disable=g-import-not-at-top
  train, valid = (tfds_images.read_classes(t.dataset, split, t.data_dir or None)
                  for split in t.tfds_splits[:2])
  return ClassificationTraining.from_class_images(train, valid, **kwargs)


def _check(config) -> None:
  t = config.task
  if config.curriculum.name and (t.network != "mlp" or not t.hidden
                                 or len(set(t.hidden)) != 1):
    raise ConfigError(f"curriculum.name={config.curriculum.name!r} on classification_training "
                      f"steers the width and depth of an MLP with equal hidden widths; got "
                      f"task.network={t.network!r}, task.hidden={tuple(t.hidden)} (e.g. "
                      "task.network='mlp', task.hidden=(64, 64))")


TASKS.register(TaskSpec(
    name="classification_training", doc="train a small classifier on fresh batches (learned "
    "optimizers)", build=_build, kinds=("training",), inputs="image", evaluator="optimizer",
    steerable={"training": "box"}, variants=ClassificationTraining.variants, check=_check,
    options=dict(
        data=Option("gaussian_mixture", choices=DATA, doc="what the batches are"),
        network=Option("mlp", choices=NETWORKS, doc="the network trained"),
        image_size=Option(8, ge=4, doc="inputs are image_size x image_size x 1"),
        num_classes=Option(10, ge=2, doc="output classes"),
        hidden=Option((32,), ge=1, element=int, doc="hidden widths (mlp) or channels (conv)"),
        activation=Option("relu", choices=tuple(ACTIVATIONS), doc="hidden activation"),
        batch_size=Option(128, ge=1, doc="examples per batch"),
        init_scale=Option(1.0, gt=0, doc="multiplies the LeCun-normal initialisation"),
        separation=Option((0.2, 0.6), length=2, check=lambda r: 0 <= r[0] <= r[1],
                          accepts="(low, high), 0 <= low <= high",
                          doc="range of the class means' scale (gaussian_mixture)"),
        dataset=Option("fashion_mnist", check=bool, accepts="a tfds image dataset name",
                       doc="the images of data='images'"),
        data_dir=Option("", doc="tfds data directory ('': tfds's default)"),
        tfds_splits=Option(("train", "test"), length=2, doc="the train and valid streams' "
                           "tfds splits"))))
