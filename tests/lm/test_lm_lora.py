"""LoRA: a new adapter changes nothing, several adapters over one base run in one call (each
example its own), merging equals applying, PEFT's layout round-trips, and bad configs are
refused."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import lm
from metalearn.lm import lora as lora_lib
from metalearn.lm.lora import Adapters, LoRAConfig, LoRAError

C = lm.from_group(dict(name="qwen3", vocab_size=40, hidden_size=32, intermediate_size=48,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8))
MODEL = lm.create(C, seed=0)
TOKENS = jax.random.randint(jax.random.key(0), (3, 6), 0, 40)
LORA = LoRAConfig(rank=4, alpha=8.0)


def _random(params, seed):
  """Adapters with nonzero B (a trained adapter)."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [0.2 * jax.random.normal(k, x.shape)
                                      for k, x in zip(keys, leaves)])


def test_a_new_adapter_changes_nothing():
  params = lora_lib.init(C, LORA, jax.random.key(1), num_adapters=2)
  base, _ = MODEL(TOKENS)
  adapted, _ = MODEL(TOKENS, adapters=Adapters(params, jnp.array([0, 1, 1]), LORA.scale))
  np.testing.assert_array_equal(adapted, base)


def test_each_example_uses_its_own_adapter_and_merging_equals_applying():
  params = _random(lora_lib.init(C, LORA, jax.random.key(1), num_adapters=3), 2)
  ids = jnp.array([2, 0, 1])
  together, _ = MODEL(TOKENS, adapters=Adapters(params, ids, LORA.scale))
  for row, i in enumerate(ids.tolist()):
    one, _ = MODEL(TOKENS[row:row + 1],
                   adapters=Adapters(lora_lib.single(params, i), jnp.zeros(1, int), LORA.scale))
    np.testing.assert_allclose(together[row], one[0], rtol=1e-5, atol=1e-5)
    merged, _ = lora_lib.merge(MODEL, params, LORA, index=i)(TOKENS[row:row + 1])
    np.testing.assert_allclose(merged[0], one[0], rtol=1e-4, atol=1e-5)
  assert float(jnp.max(jnp.abs(together - MODEL(TOKENS)[0]))) > 1e-2


def test_targets_follow_tinkers_switches():
  only_mlp = LoRAConfig(rank=2, train_attn=False, train_unembed=False)
  params = lora_lib.init(C, only_mlp, jax.random.key(0))
  assert set(params) == {"layers"} and set(params["layers"]) == {"gate", "up", "down"}
  assert params["layers"]["down"]["a"].shape == (2, 1, 48, 2)
  full = lora_lib.init(C, LORA, jax.random.key(0))
  assert full["head"]["b"].shape == (1, 4, 40)


def test_gradients_reach_the_adapters_only():
  params = lora_lib.init(C, LORA, jax.random.key(1))

  def loss(p):
    logits, _ = MODEL(TOKENS, adapters=Adapters(p, jnp.zeros(3, int), LORA.scale))
    return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[..., 0])

  grads = jax.grad(loss)(params)
  # at init B = 0: the gradient reaches every B, and no A (A's gradient goes through B)
  assert all(float(jnp.abs(g["b"]).max()) > 0 for g in grads["layers"].values())
  assert all(float(jnp.abs(g["a"]).max()) == 0 for g in grads["layers"].values())


def test_peft_layout_round_trips(tmp_path):
  params = _random(lora_lib.init(C, LORA, jax.random.key(1), num_adapters=2), 3)
  lora_lib.save_peft(params, LORA, C, tmp_path, index=1)
  again, config = lora_lib.load_peft(tmp_path, C)
  assert config == LORA
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(lora_lib.single(params, 1))):
    np.testing.assert_array_equal(a, b)


def test_bad_configs_are_refused():
  with pytest.raises(LoRAError, match="rank=0"):
    LoRAConfig(rank=0)
  with pytest.raises(LoRAError, match="trains nothing"):
    LoRAConfig(train_attn=False, train_mlp=False, train_unembed=False)
  with pytest.raises(LoRAError, match=r"\['c_attn'\] do not exist"):
    LoRAConfig.from_modules(8, 16, ["q_proj", "c_attn"])
  with pytest.raises(LoRAError, match="adapt the whole group"):
    LoRAConfig.from_modules(8, 16, ["q_proj", "v_proj"])
  tied = lm.create(C.replace(tie_word_embeddings=True))
  params = lora_lib.init(tied.config, LORA, jax.random.key(0))
  with pytest.raises(LoRAError, match="tied embeddings"):
    lora_lib.merge(tied, params, LORA)
  assert nnx.state(MODEL, nnx.Param)  # the base model is untouched by the above
