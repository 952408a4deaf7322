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

from metalearn.datasets import ClassImages
from metalearn.tasks.base import Episode


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FewShotClassification:
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
