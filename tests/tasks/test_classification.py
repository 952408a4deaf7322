"""N-way K-shot episodes: shapes, labels, disjoint support/query, jit without constants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.datasets import ClassImages
from metalearn.tasks import FewShotClassification, sample_batch
from tests.conftest import sample_tasks


def _coded_classes(counts):
  """Class c, image i has pixel (0, 0) = c and pixel (0, 1) = i: images say who they are."""
  per_class = []
  for c, n in enumerate(counts):
    images = np.zeros((n, 4, 4, 1), np.uint8)
    images[:, 0, 0, 0] = c % 256
    images[:, 0, 1, 0] = np.arange(n)
    images[:, 1:, :, 0] = 200
    per_class.append(images)
  return ClassImages.from_lists(per_class, [f"class{c}" for c in range(len(counts))])


def test_episodes_have_right_shapes_labels_and_disjoint_images():
  counts = [7, 20, 9, 12, 8, 30, 7, 10]  # unequal classes: padding must never be drawn
  family = FewShotClassification.from_classes(_coded_classes(counts), num_ways=5,
                                              num_support=2, num_query=5)
  episodes = jax.jit(sample_batch, static_argnums=2)(family, jax.random.key(0), 200)
  assert episodes.support_x.shape == (200, 10, 4, 4, 1)
  assert episodes.query_x.shape == (200, 25, 4, 4, 1)
  assert episodes.support_y.dtype == jnp.int32
  np.testing.assert_array_equal(episodes.support_y[0], np.repeat(np.arange(5), 2))
  np.testing.assert_array_equal(episodes.query_y[3], np.repeat(np.arange(5), 5))
  code = lambda x: np.rint(np.asarray(x[..., 0, :2, 0]) * 255).astype(int)  # (class, image)
  support, query = code(episodes.support_x), code(episodes.query_x)
  classes = np.asarray(episodes.info["classes"])
  orders = set()
  for e in range(200):
    assert len(set(classes[e])) == 5
    orders.add(tuple(classes[e]))
    # Every image belongs to the class its label names (label n <-> classes[n]) ...
    np.testing.assert_array_equal(support[e, :, 0], classes[e][np.asarray(episodes.support_y[e])])
    np.testing.assert_array_equal(query[e, :, 0], classes[e][np.asarray(episodes.query_y[e])])
    # ... is a real image of that class, and no image is used twice in an episode.
    both = np.concatenate([support[e], query[e]])
    assert np.all(both[:, 1] < np.asarray(counts)[both[:, 0]])
    assert len({tuple(p) for p in both}) == 35
  assert len(orders) > 150  # labels are a fresh permutation of fresh classes per episode
  assert float(episodes.support_x.min()) >= 0 and float(episodes.support_x.max()) <= 1


def test_every_class_and_image_gets_drawn():
  family = FewShotClassification.from_classes(_coded_classes([6] * 6), 3, 1, 1)
  episodes = sample_tasks(family, jax.random.key(1), 300)
  codes = np.rint(np.asarray(episodes.support_x[..., 0, :2, 0]) * 255).astype(int)
  assert {tuple(c) for c in codes.reshape(-1, 2)} == {(c, i) for c in range(6) for i in range(6)}


def test_dataset_is_an_argument_not_a_compiled_constant():
  small = FewShotClassification.from_classes(_coded_classes([20] * 10), 5, 1, 1)
  big = FewShotClassification.from_classes(_coded_classes([20] * 2000), 5, 1, 1)
  text = lambda f: jax.jit(sample_batch, static_argnums=2).lower(
      f, jax.random.key(0), 4).as_text()
  assert len(text(big)) < 2 * len(text(small))  # 2000 classes of images are not in the HLO


def test_impossible_episodes_are_refused_with_the_reason():
  with pytest.raises(ValueError, match="5-way episodes need >= 5 classes"):
    FewShotClassification.from_classes(_coded_classes([20] * 4), 5, 1, 1)
  with pytest.raises(ValueError, match="smallest class has 7"):
    FewShotClassification.from_classes(_coded_classes([20, 7, 20]), 2, 5, 5)


def test_loss_and_metrics():
  family = FewShotClassification.from_classes(_coded_classes([20] * 3), 3, 1, 1)
  logits = jnp.array([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]])
  labels = jnp.array([0, 1, 2])
  m = family.metrics(logits, labels)
  assert float(m["accuracy"]) == pytest.approx(2 / 3)
  expected = -np.mean(np.log(np.asarray(jax.nn.softmax(logits))[np.arange(3), labels]))
  assert float(m["loss"]) == pytest.approx(expected, rel=1e-5)
