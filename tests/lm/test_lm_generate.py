"""Sampling: greedy decoding follows the full forward pass's argmax, log-probabilities are the
model's, seeds make sequences independent of their batch, stop tokens and limits end them,
and top-k / top-p / temperature keep the right tokens."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import lm
from metalearn.lm import generate
from metalearn.lm.generate import SamplingParams

C = lm.from_group(dict(name="qwen3", vocab_size=50, hidden_size=32, intermediate_size=48,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
                       max_position_embeddings=64, initializer_range=0.3))
MODEL = lm.create(C, seed=0)
PROMPTS = [[3, 4, 5, 6, 7], [9, 1], [2, 8, 8, 1, 4, 0, 7, 7, 3]]


def test_greedy_decoding_follows_the_full_forward_pass():
  out = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=6, temperature=0.0))
  for prompt, seq in zip(PROMPTS, out):
    assert len(seq.tokens) == 6 and seq.stop_reason == "length"
    full = prompt + seq.tokens
    logits, _ = MODEL(jnp.asarray([full]))
    logp = jax.nn.log_softmax(logits[0])
    want = np.argmax(np.asarray(logits[0]), -1)[len(prompt) - 1:-1]
    np.testing.assert_array_equal(seq.tokens, want)
    picked = [float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(seq.tokens)]
    np.testing.assert_allclose(seq.logprobs, picked, rtol=1e-5, atol=1e-5)


def test_a_seed_gives_the_same_sequence_in_any_batch():
  params = SamplingParams(max_tokens=8, temperature=1.0)
  alone = generate.sample(MODEL, [PROMPTS[1]], params, seeds=[7])[0]
  batched = generate.sample(MODEL, PROMPTS, params, seeds=[1, 7, 3])[1]
  assert alone.tokens == batched.tokens
  other = generate.sample(MODEL, [PROMPTS[1]], params, seeds=[8])[0]
  assert other.tokens != alone.tokens


def test_stop_tokens_end_a_sequence_and_are_kept():
  free = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=10, seed=4))
  stop = free[0].tokens[3]
  out = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=10, seed=4, stop=(stop,)))
  first = out[0].tokens
  assert first == free[0].tokens[:free[0].tokens.index(stop) + 1]
  assert out[0].stop_reason == "stop"
  for seq, ref in zip(out, free):  # the others stop at their own first stop token, or run on
    n = ref.tokens.index(stop) + 1 if stop in ref.tokens else len(ref.tokens)
    assert seq.tokens == ref.tokens[:n]


def test_stop_sequences_end_a_sequence_on_their_last_token():
  free = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=10, seed=4))
  pair = tuple(free[0].tokens[4:6])
  absent = (free[0].tokens[5], 49, 48)  # its first token occurs; the sequence does not
  out = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=10, seed=4,
                                                       stop=(pair, absent)))

  def ends(tokens):  # the first position whose last tokens equal a stop sequence
    for n in range(1, len(tokens) + 1):
      if any(tuple(tokens[max(0, n - len(s)):n]) == s for s in (pair, absent)):
        return n
    return None

  assert out[0].stop_reason == "stop" and out[0].tokens == free[0].tokens[:ends(free[0].tokens)]
  for seq, ref in zip(out, free):
    n = ends(ref.tokens)
    assert seq.tokens == ref.tokens[:n or len(ref.tokens)]
    assert seq.stop_reason == ("stop" if n else "length")
  with pytest.raises(ValueError, match="non-empty sequences"):
    SamplingParams(stop=((),))


def test_filters_keep_the_top_k_and_the_top_p_mass():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  kept = lambda f: np.isfinite(np.asarray(f)[0]) & (np.asarray(f)[0] > -1e30)
  assert kept(generate.filter_logits(logits, 1.0, 2, 1.0)).tolist() == [1, 1, 0, 0]
  assert kept(generate.filter_logits(logits, 1.0, 0, 0.7)).tolist() == [1, 1, 0, 0]
  assert kept(generate.filter_logits(logits, 1.0, 0, 0.5)).tolist() == [1, 0, 0, 0]
  assert kept(generate.filter_logits(logits, 1.0, 0, 0.9)).tolist() == [1, 1, 1, 0]
  assert kept(generate.filter_logits(logits, 0.0, 0, 1.0)).tolist() == [1, 0, 0, 0]
  top1 = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=5, top_k=1, seed=3))
  greedy = generate.sample(MODEL, PROMPTS, SamplingParams(max_tokens=5, temperature=0.0))
  assert [s.tokens for s in top1] == [s.tokens for s in greedy]


def test_bad_requests_name_the_fix():
  with pytest.raises(ValueError, match="exceeds the model's context of 64.*shorten the prompt"):
    generate.sample(MODEL, [[1] * 60], SamplingParams(max_tokens=8))
  with pytest.raises(ValueError, match="outside the vocabulary.*another tokenizer"):
    generate.sample(MODEL, [[1, 50]], SamplingParams())
  with pytest.raises(ValueError, match="at least one token"):
    generate.sample(MODEL, [[]], SamplingParams())
  with pytest.raises(ValueError, match="top_p"):
    SamplingParams(top_p=0.0)
