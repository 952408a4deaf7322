"""Next-token training: the loss is optax's cross-entropy over weighted tokens, a step
trains, and a non-finite step leaves the state as it was."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn import lm
from metalearn.lm import train as lm_train

C = lm.from_group(dict(name="llama", vocab_size=40, hidden_size=32, intermediate_size=48,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8))


def test_token_losses_are_cross_entropy():
  logits = jax.random.normal(jax.random.key(0), (2, 5, 40))
  targets = jax.random.randint(jax.random.key(1), (2, 5), 0, 40)
  np.testing.assert_allclose(
      lm_train.token_losses(logits, targets),
      optax.softmax_cross_entropy_with_integer_labels(logits, targets), rtol=1e-6)


def test_steps_train_and_a_non_finite_step_is_skipped():
  optimizer = optax.adam(3e-3)
  graphdef, state = lm_train.init(lm.create(C), optimizer)
  step = jax.jit(lm_train.make_step(graphdef, optimizer))
  tokens = jnp.tile(jnp.arange(12) % 7, (4, 1))
  batch = {"tokens": tokens, "weights": jnp.ones((4, 12)).at[:, -3:].set(0.0)}
  first = None
  for _ in range(30):
    state, metrics = step(state, batch)
    first = first if first is not None else float(metrics["loss"])
  assert float(metrics["loss"]) < first / 2 and int(state.step) == 30
  assert float(metrics["tokens"]) == 4 * 8  # weights of the 11 targets: 8 ones per row
  bad = {**batch, "weights": batch["weights"].at[0, 1].set(jnp.nan)}
  after, metrics = step(state, bad)
  assert int(metrics["skipped"]) == 1 and int(after.step) == 30
  for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, b)
