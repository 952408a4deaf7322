"""Meta-gradients through LoRA fine-tuning: the engine's unroll over k Tinker-shaped steps,
differentiated by backprop (checked against finite differences in float64), by ES, and
meta-trained to fine-tune better."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn import lm
from metalearn.estimators.backprop import full_backprop
from metalearn.estimators.es import antithetic_es
from metalearn.lm.lora import LoRAConfig
from metalearn.objectives.success import final_loss
from metalearn.tinker.meta import LoRAFineTuner, TextEpisodes
from metalearn.unroll import unroll

SIZES = dict(vocab_size=24, hidden_size=16, intermediate_size=24, num_layers=2, num_heads=2,
             num_kv_heads=1, head_dim=8, max_position_embeddings=32)


def _family(dtype=jnp.float32):
  rng = np.random.RandomState(0)
  base = rng.randint(0, 24, (6, 1, 9))  # 6 groups, each a sequence repeated with noise
  rows = np.repeat(base, 4, axis=1)
  rows[:, :, -2:] = rng.randint(0, 24, (6, 4, 2))
  weights = np.ones(rows.shape, np.float32)
  return TextEpisodes(jnp.asarray(rows), jnp.asarray(weights, dtype), num_support=2)


# Central differences err by ~eps^2 times the third derivative. Adam's first steps (v ~ g^2:
# an update close to lr * sign(g)) curve the post-fine-tuning loss far more along a random
# direction than SGD's, so its step is smaller (measured relative error: Adam 3e-6 at 1e-6,
# 3e-8 at 1e-7; SGD 1e-9 at 1e-6).
@pytest.mark.parametrize("optimizer,eps", [("sgd", 1e-6), ("adam", 1e-7)])
def test_meta_gradient_matches_finite_differences_in_float64(optimizer, eps):
  with jax.enable_x64(True):
    c = lm.from_group(dict(name="qwen3", dtype="float64", param_dtype="float64", **SIZES))
    learner = LoRAFineTuner(lm.create(c, seed=0), LoRAConfig(rank=2, alpha=4.0),
                            num_inner_steps=3, optimizer=optimizer, init_lr=3e-2,
                            learn_token_weights=True)
    theta = learner.init(jax.random.key(1))
    theta = jax.tree.map(lambda x: x.astype(jnp.float64), theta)
    # a trained-looking init: B nonzero, so every part of theta matters
    theta["lora"] = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(
        jax.random.key(2), x.shape, jnp.float64), theta["lora"])
    episode = _family(jnp.float64).sample(jax.random.key(3))

    @jax.jit
    def post_loss(th):
      _, curve = unroll(learner, th, learner.init_state(th, episode), episode, 3)
      return curve[-1]

    grad = jax.jit(jax.grad(post_loss))(theta)
    direction = jax.tree.map(lambda x: jax.random.normal(jax.random.key(4), x.shape,
                                                          jnp.float64), theta)
    plus = post_loss(jax.tree.map(lambda t, d: t + eps * d, theta, direction))
    minus = post_loss(jax.tree.map(lambda t, d: t - eps * d, theta, direction))
    fd = (plus - minus) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad),
                                                   jax.tree.leaves(direction)))
    assert abs(float(analytic) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd))), (analytic, fd)
    # the learning rate's and the token weights' gradients are real, not zero
    assert abs(float(grad["log_lr"])) > 1e-6
    assert float(jnp.abs(grad["token_weights"]).max()) > 1e-6


def test_backprop_meta_training_improves_fine_tuning_and_es_points_the_same_way():
  c = lm.from_group(dict(name="llama", **SIZES))
  learner = LoRAFineTuner(lm.create(c, seed=0), LoRAConfig(rank=2, alpha=4.0),
                          num_inner_steps=2, optimizer="sgd", init_lr=1e-2)
  family = _family()
  backprop = full_backprop(learner, family, final_loss, meta_batch_size=4, num_steps=2)
  theta = learner.init(jax.random.key(0))
  opt = optax.adam(3e-2)
  opt_state = opt.init(theta)
  step = jax.jit(lambda th, s, k: backprop.estimate(th, s, k))
  losses = []
  for _ in range(8):
    grads, _, metrics = step(theta, (), jax.random.key(100))  # the same tasks each step
    losses.append(float(metrics["meta_loss"]))
    updates, opt_state = opt.update(grads, opt_state, theta)
    theta = optax.apply_updates(theta, updates)
  assert losses[-1] < losses[0] - 0.5, losses  # measured: 3.21 -> 1.81 in 8 steps
  # ES through the same loop: its estimate points along backprop's (cosine over all ~1,200
  # meta-parameters; a random direction's would be about +-0.03)
  theta0 = learner.init(jax.random.key(0))
  theta0["lora"] = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2),
                                                                      x.shape), theta0["lora"])
  flat = lambda g: jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])
  g_bp = flat(jax.jit(full_backprop(learner, family, final_loss, 64, 2).estimate)(
      theta0, (), jax.random.key(7))[0])
  es = antithetic_es(learner, family, final_loss, meta_batch_size=256, num_steps=2, sigma=0.01)
  g_es = flat(jax.jit(es.estimate)(theta0, (), jax.random.key(7))[0])
  cosine = float(g_es @ g_bp / jnp.linalg.norm(g_es) / jnp.linalg.norm(g_bp))
  assert cosine > 0.1, cosine
