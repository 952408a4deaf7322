"""Numerics against Hugging Face transformers: checkpoints that transformers itself writes,
loaded by ours, give the same logits (prefill and cached decode), and ours load in transformers.

Needs the ``parity`` extra (torch, transformers); ``.ci/run`` installs it. Without it these
tests are skipped, with the reason."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity extra: pip install torch==2.13.0 "
                            "&& pip install -e '.[parity]'")
transformers = pytest.importorskip("transformers", reason="the parity extra")

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

from metalearn import lm  # pylint: disable=g-import-not-at-top
from metalearn.lm import hf  # pylint: disable=g-import-not-at-top

# Float32 tolerance: two implementations of the same float32 arithmetic (different matmul and
# reduction orders) over logits of magnitude ~1.
ATOL = 2e-5
SIZES = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16,
             max_position_embeddings=256)
CASES = {
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {}),
    "qwen3-yarn-tied": ("Qwen3Config", "Qwen3ForCausalLM",
                        dict(tie_word_embeddings=True, rope_scaling=dict(
                            rope_type="yarn", factor=4.0, original_max_position_embeddings=64))),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(attention_bias=True, mlp_bias=True)),
    "llama3-rope": ("LlamaConfig", "LlamaForCausalLM", dict(rope_scaling=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=32))),
    "llama-linear": ("LlamaConfig", "LlamaForCausalLM",
                     dict(rope_scaling=dict(rope_type="linear", factor=2.0))),
}


def _hf_model(case, tmp_path, dtype=None):
  config_cls, model_cls, extra = CASES[case]
  torch.manual_seed(0)
  config = getattr(transformers, config_cls)(**SIZES, **extra)
  model = getattr(transformers, model_cls)(config).eval()
  with torch.no_grad():  # HF initialises norms to one: perturb them so that they are tested
    for name, p in model.named_parameters():
      if "norm" in name or "bias" in name:
        p.add_(0.1 * torch.randn_like(p))
  if dtype is not None:
    model = model.to(dtype)
  model.save_pretrained(tmp_path)
  return model


def _tokens(batch=2, length=40, seed=0):
  return np.random.RandomState(seed).randint(0, SIZES["vocab_size"], (batch, length))


@pytest.mark.parametrize("case", sorted(CASES))
def test_prefill_and_cached_decode_match_transformers(case, tmp_path):
  ref = _hf_model(case, tmp_path)
  ours = hf.load(tmp_path)
  tokens = _tokens()
  with torch.no_grad():
    want = ref(torch.tensor(tokens)).logits.numpy()
  full, _ = ours(jnp.asarray(tokens))
  diff = float(np.abs(np.asarray(full) - want).max())
  assert diff < ATOL, diff
  # Prefill 30 tokens into a cache, then decode the last 10 one at a time.
  cache = lm.init_cache(ours.config, 2, 48)
  prefill, cache = ours(jnp.asarray(tokens[:, :30]),
                        positions=jnp.broadcast_to(jnp.arange(30), (2, 30)), cache=cache)
  steps = [np.asarray(prefill)]
  for i in range(30, 40):
    step, cache = ours(jnp.asarray(tokens[:, i:i + 1]), positions=jnp.full((2, 1), i),
                       cache=cache)
    steps.append(np.asarray(step))
  decode_diff = float(np.abs(np.concatenate(steps, axis=1) - want).max())
  assert decode_diff < ATOL, decode_diff
  print(f"{case}: max |logit difference| prefill {diff:.2e}, cached decode {decode_diff:.2e}")


@pytest.mark.parametrize("case", ["qwen3", "llama"])
def test_transformers_loads_what_we_save(case, tmp_path):
  _hf_model(case, tmp_path / "src")
  ours = hf.load(tmp_path / "src")
  hf.save(ours, tmp_path / "ours")
  ref = getattr(transformers, CASES[case][1]).from_pretrained(tmp_path / "ours").eval()
  tokens = _tokens(seed=1)
  with torch.no_grad():
    want = ref(torch.tensor(tokens)).logits.numpy()
  np.testing.assert_allclose(np.asarray(ours(jnp.asarray(tokens))[0]), want, atol=ATOL,
                             rtol=0)


def test_bfloat16_checkpoints_read_and_written(tmp_path):
  _hf_model("qwen3", tmp_path / "src", dtype=torch.bfloat16)
  ours = hf.load(tmp_path / "src", param_dtype="float32")  # bf16 weights, float32 compute
  ref = transformers.Qwen3ForCausalLM.from_pretrained(tmp_path / "src",
                                                      dtype=torch.float32).eval()
  tokens = _tokens(seed=2)
  with torch.no_grad():
    want = ref(torch.tensor(tokens)).logits.numpy()
  np.testing.assert_allclose(np.asarray(ours(jnp.asarray(tokens))[0]), want, atol=ATOL, rtol=0)
  hf.save(ours, tmp_path / "ours", dtype="bfloat16")
  again = transformers.Qwen3ForCausalLM.from_pretrained(tmp_path / "ours").eval()
  assert again.dtype == torch.bfloat16
  for (name, a), b in zip(ref.state_dict().items(), again.state_dict().values()):
    np.testing.assert_array_equal(a.numpy(), b.float().numpy(), err_msg=name)



def test_peft_loads_our_lora_adapters(tmp_path):
  peft = pytest.importorskip("peft", reason="the parity extra")
  import jax  # pylint: disable=g-import-not-at-top
  from metalearn.lm import lora as lora_lib  # pylint: disable=g-import-not-at-top
  _hf_model("llama", tmp_path / "base")
  ours = hf.load(tmp_path / "base")
  config = lora_lib.LoRAConfig(rank=4, alpha=8.0)
  params = lora_lib.init(ours.config, config, jax.random.key(0), num_adapters=2)
  leaves, treedef = jax.tree.flatten(params)  # a trained adapter: B nonzero
  keys = jax.random.split(jax.random.key(1), len(leaves))
  params = jax.tree.unflatten(treedef, [0.1 * jax.random.normal(k, x.shape)
                                        for k, x in zip(keys, leaves)])
  lora_lib.save_peft(params, config, ours.config, tmp_path / "adapter", index=1)
  base = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base")
  theirs = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
  tokens = _tokens(seed=3)
  with torch.no_grad():
    want = theirs(torch.tensor(tokens)).logits.numpy()
  got, _ = ours(jnp.asarray(tokens), adapters=lora_lib.Adapters(
      params, jnp.ones(len(tokens), jnp.int32), config.scale))
  np.testing.assert_allclose(np.asarray(got), want, atol=ATOL, rtol=0)
  merged, _ = lora_lib.merge(ours, params, config, index=1)(jnp.asarray(tokens))
  np.testing.assert_allclose(np.asarray(merged), want, atol=1e-4, rtol=0)
