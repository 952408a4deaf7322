"""The decoder LM: configs by architecture name, cached decoding equal to the full forward pass,
padding, rematerialisation, and the errors a wrong config gets."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import lm
from metalearn.registry import ConfigError

SMALL = dict(vocab_size=61, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
             num_kv_heads=2, head_dim=8)


def small(name="llama", **kw):
  return lm.from_group(dict(name=name, **{**SMALL, **kw}))


def test_architectures_are_components_with_their_own_defaults():
  assert {"llama", "qwen3"} <= set(lm.ARCHITECTURES.names())
  assert small("qwen3").qk_norm and not small("llama").qk_norm
  assert small("qwen3").rope_theta == 1e6 and small("llama").rms_norm_eps == 1e-5
  with pytest.raises(ConfigError, match="Did you mean 'qwen3'"):
    lm.from_group(dict(name="qwen4"))
  with pytest.raises(ConfigError, match="lm.hiden_size.*Did you mean 'lm.hidden_size'"):
    lm.from_group(dict(name="llama", hiden_size=8))
  with pytest.raises(ConfigError, match="multiple of lm.num_kv_heads"):
    small(num_kv_heads=3)
  with pytest.raises(ConfigError, match="'dynamic' and 'longrope'"):
    small(rope_scaling=dict(rope_type="dynamic", factor=2.0))
  with pytest.raises(ConfigError, match="needs.*low_freq_factor"):
    small(rope_scaling=dict(rope_type="llama3", factor=8.0))


@pytest.mark.parametrize("name", ["llama", "qwen3"])
def test_parameter_count_matches_the_model(name):
  c = small(name, attention_bias=True, tie_word_embeddings=(name == "qwen3"))
  model = lm.create(c)
  assert sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))) == c.num_params()


@pytest.mark.parametrize("name,rope", [
    ("llama", {}),
    ("qwen3", dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=16)),
])
def test_prefill_then_cached_decode_equals_the_full_forward_pass(name, rope):
  c = small(name, rope_scaling=rope)
  model = lm.create(c, seed=1)
  tokens = jax.random.randint(jax.random.key(0), (3, 9), 0, c.vocab_size)
  full, _ = model(tokens)
  # Rows of different prompt lengths prefill together (right-padded with junk), then each
  # decodes from its own length: every position's logits equal the full pass's.
  lengths = np.array([5, 3, 7])
  cache = lm.init_cache(c, 3, 12)
  padded = jnp.where(jnp.arange(9)[None] < lengths[:, None], tokens, 7)
  positions = jnp.broadcast_to(jnp.arange(9), (3, 9))
  logits, cache = model(padded, positions=positions, cache=cache)
  for row, n in enumerate(lengths):
    np.testing.assert_allclose(logits[row, :n], full[row, :n], rtol=1e-5, atol=1e-5)
  pos = jnp.asarray(lengths)
  for _ in range(9 - lengths.min()):
    step_tokens = tokens[jnp.arange(3), jnp.minimum(pos, 8)][:, None]
    step, cache = model(step_tokens, positions=pos[:, None], cache=cache)
    for row in range(3):
      if pos[row] < 9:
        np.testing.assert_allclose(step[row, 0], full[row, int(pos[row])], rtol=1e-5,
                                   atol=1e-5)
    pos = pos + 1


def test_padding_keys_are_never_attended_to():
  c = small()
  model = lm.create(c)
  tokens = jax.random.randint(jax.random.key(2), (2, 6), 0, c.vocab_size)
  mask = jnp.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
  other = tokens.at[0, 4:].set(3)
  a, _ = model(tokens, attention_mask=mask)
  b, _ = model(other, attention_mask=mask)
  np.testing.assert_array_equal(a[0, :4], b[0, :4])
  short, _ = model(tokens[:1, :4])
  np.testing.assert_allclose(a[0, :4], short[0], rtol=1e-5, atol=1e-6)


def _loss(model, tokens):
  logits, _ = model(tokens[:, :-1])
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], -1))


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_gives_the_same_gradients(remat):
  tokens = jax.random.randint(jax.random.key(3), (2, 8), 0, 61)
  grads = {}
  for mode in ("none", remat):
    model = lm.create(small("qwen3", remat=mode), seed=4)
    grads[mode] = nnx.grad(_loss)(model, tokens)
  for a, b in zip(jax.tree.leaves(grads["none"]), jax.tree.leaves(grads[remat])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_bfloat16_activations_and_parameters():
  c = small("qwen3", dtype="bfloat16", param_dtype="bfloat16")
  model = lm.create(c)
  assert model.embed[...].dtype == jnp.bfloat16
  tokens = jax.random.randint(jax.random.key(5), (2, 5), 0, c.vocab_size)
  logits, _ = model(tokens)
  assert logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))
  ref = lm.create(small("qwen3"))
  nnx.update(ref, jax.tree.map(lambda x: x.astype(jnp.float32), nnx.state(model)))
  np.testing.assert_allclose(logits, ref(tokens)[0], atol=3e-2)


def test_a_cache_needs_positions_and_no_mask():
  c = small()
  model = lm.create(c)
  cache = lm.init_cache(c, 1, 4)
  with pytest.raises(ValueError, match="pass positions"):
    model(jnp.zeros((1, 2), jnp.int32), cache=cache)
  with pytest.raises(ValueError, match="no attention_mask"):
    model(jnp.zeros((1, 2), jnp.int32), positions=jnp.zeros((1, 2), jnp.int32), cache=cache,
          attention_mask=jnp.ones((1, 2)))
