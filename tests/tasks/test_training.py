"""Network-training task families: shapes, purity, fresh batches, images, parametric sampling."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.datasets import ClassImages
from metalearn.tasks import ClassificationTraining, LanguageModelTraining, QuadraticTraining
from metalearn.tasks import parametric
from metalearn.tasks.training import batch_key
from tests.conftest import sample_tasks

FAMILIES = {
    "mixture_mlp": ClassificationTraining(batch_size=8),
    "teacher_conv": ClassificationTraining(data="teacher", network="conv", hidden=(4, 4),
                                           batch_size=8, activation="tanh"),
    "quadratic": QuadraticTraining(dim=5, batch_size=4),
    "lm": LanguageModelTraining(vocab_size=5, seq_len=6, width=8, num_heads=2, batch_size=3),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_is_pure_vmappable_and_draws_fresh_batches(name):
  family = FAMILIES[name]

  @jax.jit
  def probe(key):
    tasks = sample_tasks(family, key, 3)
    task = jax.tree.map(lambda a: a[0], tasks)
    params = family.init_params(task)
    batch = lambda split, t: family.batch(task, batch_key(task, split, jnp.int32(t)), split)
    loss, grads = jax.value_and_grad(family.loss)(params, batch("train", 0))
    losses = jax.vmap(lambda t: family.loss(family.init_params(t), family.batch(
        t, batch_key(t, "train", jnp.int32(0)), "train")))(tasks)
    return tasks, batch("train", 0), batch("train", 1), batch("valid", 0), loss, grads, losses

  tasks, b0, b1, v0, loss, grads, losses = probe(jax.random.key(0))
  again = probe(jax.random.key(0))[0]
  jax.tree.map(np.testing.assert_array_equal, tasks, again)  # a pure function of the key
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(b0), jax.tree.leaves(b1)))
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(b0), jax.tree.leaves(v0)))
  assert loss.shape == () and np.isfinite(loss)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert losses.shape == (3,) and len(np.unique(np.asarray(losses))) == 3


def test_gaussian_mixture_is_learnable_and_separation_sets_difficulty():
  easy = ClassificationTraining(separation=(2.0, 2.0), batch_size=512)
  hard = dataclasses.replace(easy, separation=(0.0, 0.0))
  task = easy.sample(jax.random.key(1))
  x, y = easy.batch(task, jax.random.key(2), "train")
  means = task.info["means"]
  # nearest class mean is the Bayes classifier of equal-variance clusters
  d = jnp.sum((x.reshape(len(x), -1)[:, None] - means[None]) ** 2, -1)
  assert np.mean(np.argmin(d, -1) == y) > 0.99
  h_task = hard.sample(jax.random.key(1))
  assert np.allclose(h_task.info["means"], 0.0)  # no signal: nothing to learn


def test_images_family_samples_its_two_pools():
  per_class = [np.full((6, 12, 12, 1), 40 * c, np.uint8) for c in range(3)]
  classes = ClassImages.from_lists(per_class, ["a", "b", "c"])
  fam = ClassificationTraining.from_class_images(classes, classes, num_classes=3, batch_size=16)
  assert fam.images.shape == (2, 18, 8, 8, 1) and fam.labels.shape == (2, 18)
  np.testing.assert_array_equal(fam.counts, [18, 18])
  task = fam.sample(jax.random.key(0))
  x, y = fam.batch(task, jax.random.key(3), "valid")
  # each image is constant with a class-specific value: the label follows from the pixels
  level = np.asarray(x[:, 0, 0, 0])
  for c in range(3):
    assert len(np.unique(level[np.asarray(y) == c])) <= 1
  assert len(np.unique(level)) == len(np.unique(np.asarray(y)))


def test_parametric_families_vary_and_each_is_vmappable():
  rng = np.random.default_rng(0)
  families = [parametric.sample_classification(rng) for _ in range(12)]
  assert len({(f.hidden, f.activation, f.batch_size, f.data) for f in families}) > 6
  for f in families[:3]:
    tasks = sample_tasks(f, jax.random.key(0), 2)
    params = jax.vmap(f.init_params)(tasks)
    assert jax.tree.leaves(params)[0].shape[0] == 2
    assert parametric.describe(f)
  q = parametric.sample_quadratic(rng)
  assert q.dim in (2, 4, 8, 16, 32, 64)


def test_quadratic_condition_number_and_optimum():
  fam = QuadraticTraining(dim=6, log10_condition=(2.0, 2.0), noise=0.0)
  task = fam.sample(jax.random.key(0))
  eig = np.linalg.eigvalsh(np.asarray(task.info["hessian"]))
  np.testing.assert_allclose(eig.max() / eig.min(), 100.0, rtol=1e-3)
  batch = fam.batch(task, jax.random.key(1), "train")
  assert float(fam.loss({"x": task.info["optimum"]}, batch)) == pytest.approx(0.0, abs=1e-6)


def test_language_model_is_causal():
  fam = FAMILIES["lm"]
  task = jax.jit(fam.sample)(jax.random.key(0))
  params = jax.jit(fam.init_params)(task)
  tokens = jax.jit(fam.batch, static_argnums=2)(task, jax.random.key(1), "train")[:, :-1]
  apply = jax.jit(fam.apply)  # one program for both prompts, not op by op
  logits = apply(params, tokens)
  changed = tokens.at[:, -1].set((tokens[:, -1] + 1) % fam.vocab_size)
  np.testing.assert_allclose(apply(params, changed)[:, :-1], logits[:, :-1], atol=1e-6)


def _slice_small(params, width, depth):
  """The ``depth``-layer, ``width``-unit MLP inside a steered family's largest parameters."""
  n = len(params)
  small = {"layer_0": {"w": params["layer_0"]["w"][:, :width],
                       "b": params["layer_0"]["b"][:width]}}
  for i in range(1, depth):
    small[f"layer_{i}"] = {"w": params[f"layer_{i}"]["w"][:width, :width],
                           "b": params[f"layer_{i}"]["b"][:width]}
  small[f"layer_{depth}"] = {"w": params[f"layer_{n - 1}"]["w"][:width],
                             "b": params[f"layer_{n - 1}"]["b"]}
  return small


def test_a_teacher_steers_width_and_depth_and_the_masked_network_is_the_small_one():
  from metalearn.tasks.training import cross_entropy, mlp_apply
  fam = ClassificationTraining(data="teacher", hidden=(32, 32, 32), batch_size=16)
  assert fam.task_space == ("box", 2) and fam.min_width == 4
  architecture = jax.jit(lambda u: fam.at_task(u).sample(jax.random.key(0)).info["architecture"])
  corner = lambda u: architecture(jnp.asarray(u))
  assert {k: int(v) for k, v in corner([0.0, 0.0]).items()} == {"width": 4, "depth": 1}
  assert {k: int(v) for k, v in corner([1.0, 1.0]).items()} == {"width": 32, "depth": 3}
  assert {k: int(v) for k, v in corner([2 / 3, 0.5]).items()} == {"width": 16, "depth": 2}
  task = jax.jit(lambda u: fam.at_task(u).sample(jax.random.key(1)))(
      jnp.array([1 / 3, 0.5]))  # width 8, depth 2
  params = jax.jit(fam.init_params)(task)
  batch = jax.jit(lambda t: fam.batch(t, batch_key(t, "train", jnp.int32(0)), "train"))(task)
  x, y, arch = batch
  assert (int(arch["width"]), int(arch["depth"])) == (8, 2)
  small = _slice_small(params, 8, 2)
  small_loss = lambda q: cross_entropy(mlp_apply(q, x.reshape(len(x), -1), "relu"), y)
  np.testing.assert_allclose(jax.jit(fam.loss)(params, batch), jax.jit(small_loss)(small),
                             rtol=1e-6)
  grads, small_grads = jax.jit(jax.grad(fam.loss))(params, batch), jax.jit(jax.grad(small_loss))(
      small)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               _slice_small(grads, 8, 2), small_grads)
  # every weight the small network does not have gets exactly zero gradient
  total = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads))
  kept = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(_slice_small(grads, 8, 2)))
  assert total == pytest.approx(kept, rel=1e-6) and float(jnp.abs(grads["layer_2"]["w"]).max()) == 0
  # LeCun scale of the network in use: fan-in 8 after the first layer, not 32
  many = jax.jit(jax.vmap(lambda k: fam.init_params(fam.at_task(jnp.array([1 / 3, 0.5])).sample(
      k))))(jax.random.split(jax.random.key(2), 64))
  np.testing.assert_allclose(float(jnp.std(many["layer_1"]["w"])), 1 / np.sqrt(8), rtol=0.05)
  np.testing.assert_allclose(float(jnp.std(many["layer_0"]["w"])), 1 / np.sqrt(64), rtol=0.05)


def test_steering_needs_an_mlp_of_equal_widths():
  for fam in (ClassificationTraining(network="conv", hidden=(4, 4)),
              ClassificationTraining(hidden=(32, 16))):
    with pytest.raises(ValueError, match="equal hidden widths"):
      fam.at_task(jnp.ones(2))
