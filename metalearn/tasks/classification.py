"""N-way K-shot image classification episodes, sampled inside ``jit`` from a class index.

An episode draws ``num_ways`` distinct classes in random order (class ``i`` of the draw gets
label ``i``, so labels are a fresh random permutation every episode), then ``num_support +
num_query`` distinct images of each class (support and query never share an image). All
sampling is ``jax.random`` on device arrays: ``vmap`` over keys gives a meta-batch with no
Python loop and no host round trip.

The images live in the family as device arrays (``uint8``, converted to ``float32`` in
``[0, 1]`` per episode). The family is a pytree whose leaves are those arrays, so jitted
functions take it as an argument (see :func:`metalearn.tasks.base.TaskFamily`) rather than
baking hundreds of megabytes of constants into the program.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn.datasets import ClassImages, loading
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, Episode, EpisodeFamily, TaskSpec


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FewShotClassification(EpisodeFamily):
  """N-way K-shot classification over the classes of a :class:`ClassImages`.

  Attributes:
    images: ``uint8 [C, max_per_class, H, W, channels]`` (device array).
    counts: ``int32 [C]`` real images per class.
    num_ways: N, classes per episode.
    num_support: K, support images per class.
    num_query: query images per class.
  """
  images: jax.Array
  counts: jax.Array
  num_ways: int = dataclasses.field(default=5, metadata=dict(static=True))
  num_support: int = dataclasses.field(default=1, metadata=dict(static=True))
  num_query: int = dataclasses.field(default=5, metadata=dict(static=True))

  @classmethod
  def from_classes(cls, classes: ClassImages, num_ways: int, num_support: int,
                   num_query: int) -> "FewShotClassification":
    """Checks that the classes can supply such episodes and puts the images on device."""
    if classes.num_classes < num_ways:
      raise ValueError(f"{num_ways}-way episodes need >= {num_ways} classes; the split has "
                       f"{classes.num_classes}")
    fewest = int(np.min(classes.counts))
    if fewest < num_support + num_query:
      raise ValueError(f"{num_support} support + {num_query} query images per class need "
                       f">= {num_support + num_query} images in every class; the smallest "
                       f"class has {fewest}")
    return cls(jnp.asarray(classes.images), jnp.asarray(classes.counts), num_ways,
               num_support, num_query)

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.images.shape[2:])

  @property
  def output_dim(self) -> int:
    return self.num_ways

  primary_metric = "accuracy"

  def sample(self, key: jax.Array) -> Episode:
    """Support ``[N*K, H, W, ch]`` / query ``[N*Q, ...]`` images with int32 labels in
    ``[0, N)``, grouped by label; ``info["classes"]`` holds the drawn class of each label."""
    n, k, q = self.num_ways, self.num_support, self.num_query
    k_classes, k_images = jax.random.split(key)
    classes = jax.random.choice(k_classes, self.counts.shape[0], (n,), replace=False)
    # k + q distinct images per class: the top k + q of uniform scores over the real ones.
    scores = jax.random.uniform(k_images, (n, self.images.shape[1]))
    real = jnp.arange(self.images.shape[1]) < self.counts[classes][:, None]
    _, picks = jax.lax.top_k(jnp.where(real, scores, -1.0), k + q)
    x = self.images[classes[:, None], picks].astype(jnp.float32) / 255.0  # [n, k+q, H, W, c]
    labels = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], (n, k + q))
    flat = lambda a: a.reshape((-1,) + a.shape[2:])
    return Episode(flat(x[:, :k]), flat(labels[:, :k]), flat(x[:, k:]), flat(labels[:, k:]),
                   {"classes": classes, "images": picks})

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of logits ``[M, N]`` against int labels ``[M]``."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(predictions, targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Accuracy and cross-entropy of logits against labels."""
    return {"accuracy": jnp.mean(jnp.argmax(predictions, -1) == targets),
            "loss": self.loss(predictions, targets)}


def _build(t, split: str) -> FewShotClassification:
  splits = loading.load_splits(t)
  if split not in splits:
    raise ValueError(f"{t.dataset} protocol {t.protocol!r} has no {split!r} split; it has "
                     f"{sorted(splits)} (set eval.split)")
  return FewShotClassification.from_classes(splits[split], t.num_ways, t.num_support,
                                            t.num_query)


def _without_data(t, shapes) -> FewShotClassification:
  """No classes: the input shape, episode sizes and loss a learner reads (an export's)."""
  return FewShotClassification(jnp.zeros((0, 1, *shapes["input_shape"]), jnp.uint8),
                               jnp.zeros((0,), jnp.int32), t.num_ways, t.num_support,
                               t.num_query)


def _check(config) -> None:
  if config.model.name == "mlp" and not config.model.hidden:
    raise ConfigError("model.hidden must list at least one layer width for few_shot tasks")
  if config.task.protocol == "mini" and config.eval.get("split") == "validation":
    raise ConfigError("task.protocol='mini' has no validation classes: set eval.split to "
                      "'train' or 'test'")


TASKS.register(TaskSpec(
    name="few_shot", doc="N-way K-shot image classification over a base dataset's classes",
    build=_build, kinds=("episodes",), target="classification", inputs="image",
    evaluator="few_shot", check=_check, without_data=_without_data,
    options=dict(
        dataset=Option("omniglot", check=bool, accepts="a tfds dataset name ('omniglot', "
                       "'mnist', 'cifar10', ...)", doc="the base dataset"),
        source=Option("zip", choices=loading.SOURCES, doc="Omniglot from the original zips or "
                      "tfds"),
        data_dir=Option("", doc="where the data are ('' : $METALEARN_OMNIGLOT_DIR / tfds's)"),
        cache_dir=Option("", doc="where built splits are cached ('': $METALEARN_CACHE_DIR)"),
        protocol=Option("standard", choices=loading.PROTOCOLS, doc="class split protocol "
                        "(metalearn.datasets.loading)"),
        tfds_splits=Option(("train", "test"), length=(1, None),
                           doc="tfds splits pooled into classes (other datasets)"),
        num_ways=Option(5, ge=2, doc="N, classes per episode"),
        num_support=Option(1, ge=1, doc="K, support images per class"),
        num_query=Option(1, ge=1, doc="query images per class"),
        image_size=Option(28, ge=4, doc="images are resized to this square size"),
        rotate_train=Option(True, doc="add 90/180/270-degree rotations as classes (train)"),
        rotate_eval=Option(True, doc="... and for validation and test"),
        split_seed=Option(0, ge=0, lt=2**32, doc="seed of the class shuffle"),
        num_train_classes=Option(1100, ge=1, doc="meta-training classes"),
        num_validation_classes=Option(100, ge=0, doc="validation classes"))))
