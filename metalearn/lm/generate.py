"""Sampling from the decoder LM: batched, padded, jitted prefill, then KV-cache decoding in a
``lax.while_loop`` with temperature, top-k, top-p, stop tokens or token sequences and
per-sequence seeds.

:func:`sample` takes prompts of different lengths (lists of token ids), right-pads them to a
bucketed length, prefills them together and decodes until every sequence has ended with a stop
token or sequence, or has ``max_tokens`` tokens. Shapes are bucketed (prompt and cache lengths to multiples of
:data:`BUCKET`), so a stream of requests compiles a handful of programs, not one per length.

Determinism: sequence ``i`` draws its token ``t`` with ``fold_in(key(seeds[i]), t)``, so a
prompt and a seed give the same tokens whatever else is in the batch.

``logprobs`` are the sampled tokens' log-probabilities under the model itself (temperature 1,
no truncation): the quantity an importance-sampling or PPO loss compares with the trainer's.
"""

import dataclasses
import functools
from typing import Sequence

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from metalearn.lm.lora import Adapters
from metalearn.lm.model import Transformer, init_cache

BUCKET = 32


@dataclasses.dataclass(frozen=True)
class SamplingParams:
  """How to sample (the fields of Tinker's ``SamplingParams`` that act on token ids).

  Attributes:
    max_tokens: at most this many new tokens per sequence.
    temperature: logits are divided by it; 0 is greedy (argmax).
    top_k: keep the k most likely tokens (0: all).
    top_p: keep the smallest set of most likely tokens whose probability reaches p (1: all).
    stop: what ends a sequence (included in its output): token ids, or token-id sequences
      (tuples) that end it when its last tokens equal one.
    seed: the first sequence's seed; sequence ``i`` uses ``seed + i`` unless
      :func:`sample` is given ``seeds``.
  """
  max_tokens: int = 16
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  stop: tuple[int | tuple[int, ...], ...] = ()
  seed: int = 0

  @property
  def stop_sequences(self) -> tuple[tuple[int, ...], ...]:
    """Every stop as a token-id sequence."""
    return tuple(tuple(int(t) for t in s) if isinstance(s, (tuple, list)) else (int(s),)
                 for s in self.stop)

  def __post_init__(self):
    if self.max_tokens < 1:
      raise ValueError(f"max_tokens={self.max_tokens}: at least 1")
    if self.temperature < 0:
      raise ValueError(f"temperature={self.temperature}: >= 0 (0 is greedy)")
    if self.top_k < 0:
      raise ValueError(f"top_k={self.top_k}: >= 0 (0 keeps every token)")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"top_p={self.top_p}: in (0, 1]")
    if any(not s or min(s) < 0 for s in self.stop_sequences):
      raise ValueError(f"stop={self.stop!r}: token ids >= 0, or non-empty sequences of them")


@dataclasses.dataclass(frozen=True)
class SampledSequence:
  """One sampled continuation: its tokens, their log-probabilities, and why it ended
  (``"stop"``: a stop token, included in ``tokens``; ``"length"``: ``max_tokens``)."""
  tokens: list[int]
  logprobs: list[float]
  stop_reason: str


def _round_up(n: int, to: int) -> int:
  return -(-n // to) * to


def filter_logits(logits: jax.Array, temperature, top_k: int, top_p) -> jax.Array:
  """Logits ``[B, V]`` scaled by ``temperature`` with tokens outside the top-k / top-p set at
  ``-inf`` (``temperature`` 0: only the argmax kept)."""
  greedy = temperature <= 0
  scaled = logits / jnp.where(greedy, 1.0, temperature)
  neg = jnp.finfo(logits.dtype).min
  if top_k:
    kth = jax.lax.top_k(scaled, top_k)[0][:, -1:]
    scaled = jnp.where(scaled < kth, neg, scaled)
  order = jnp.sort(scaled, axis=-1)[:, ::-1]
  probs = jax.nn.softmax(order, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs  # mass of strictly more likely tokens
  cutoff = jnp.min(jnp.where(before < top_p, order, jnp.inf), axis=-1, keepdims=True)
  scaled = jnp.where(scaled < cutoff, neg, scaled)
  best = jnp.max(logits, axis=-1, keepdims=True)
  return jnp.where(greedy, jnp.where(logits >= best, 0.0, neg), scaled)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_tokens", "cache_len", "top_k",
                                             "scale"))
def _generate(graphdef, state, tokens, lengths, seeds, stop_table, temperature, top_p,
              lora_params, lora_ids, *, max_tokens: int, cache_len: int, top_k: int,
              scale: float):
  model = nnx.merge(graphdef, state)
  adapters = None if lora_params is None else Adapters(lora_params, lora_ids, scale)
  b, p = tokens.shape
  cache = init_cache(model.config, b, cache_len)
  positions = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32), (b, p))
  logits, cache = model(tokens, positions=positions, cache=cache, adapters=adapters)
  last = jnp.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0]
  keys = jax.vmap(jax.random.key)(seeds)

  def draw(logits, t):
    filtered = filter_logits(logits, temperature, top_k, top_p)
    step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, t)
    token = jax.vmap(jax.random.categorical)(step_keys, filtered).astype(jnp.int32)
    logprob = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], -1)[:, 0]
    return token, logprob

  def cond(carry):
    t, _, _, _, done, _, _, _ = carry
    return (t < max_tokens) & ~jnp.all(done)

  def body(carry):
    t, cache, logits, pos, done, out, out_lp, recent = carry
    token, logprob = draw(logits, t)
    token = jnp.where(done, 0, token)
    out = out.at[:, t].set(token)
    out_lp = out_lp.at[:, t].set(jnp.where(done, 0.0, logprob))
    count = jnp.where(done, 0, 1)
    # the last tokens against every stop sequence (right-aligned; -1: before its start)
    recent = jnp.concatenate([recent[:, 1:], token[:, None]], axis=1)
    matches = (stop_table[None] == recent[:, None]) | (stop_table[None] < 0)
    stopped = jnp.any(jnp.all(matches, axis=-1), axis=-1) & jnp.any(stop_table >= 0)
    logits, cache = model(token[:, None], positions=pos[:, None], cache=cache,
                          adapters=adapters)
    return (t + 1, cache, logits[:, 0], pos + count, done | stopped, out, out_lp, recent)

  init = (jnp.int32(0), cache, last, lengths.astype(jnp.int32), jnp.zeros((b,), bool),
          jnp.zeros((b, max_tokens), jnp.int32), jnp.zeros((b, max_tokens), jnp.float32),
          jnp.full((b, stop_table.shape[1]), -2, jnp.int32))
  _, _, _, end, done, out, out_lp, _ = jax.lax.while_loop(cond, body, init)
  return out, out_lp, end - lengths, done


def sample(model: Transformer, prompts: Sequence[Sequence[int]], params: SamplingParams,
           seeds: Sequence[int] | None = None, adapters: Adapters | None = None
           ) -> list[SampledSequence]:
  """One continuation of each prompt (see the module docstring); ``adapters``: LoRA adapters
  (``adapters.ids``: one per prompt)."""
  c = model.config
  if not prompts or any(len(p) == 0 for p in prompts):
    raise ValueError("every prompt needs at least one token (e.g. the BOS token)")
  longest = max(len(p) for p in prompts)
  if longest + params.max_tokens > c.max_position_embeddings:
    raise ValueError(f"a prompt of {longest} tokens plus max_tokens={params.max_tokens} "
                     f"exceeds the model's context of {c.max_position_embeddings} positions: "
                     "shorten the prompt or lower max_tokens")
  bad = [t for p in prompts for t in p if not 0 <= t < c.vocab_size]
  if bad:
    raise ValueError(f"token id {bad[0]} is outside the vocabulary (0..{c.vocab_size - 1}): "
                     "the prompt was encoded with another tokenizer")
  p_len = min(_round_up(longest, BUCKET), c.max_position_embeddings)
  cache_len = min(_round_up(p_len + params.max_tokens, BUCKET), c.max_position_embeddings)
  tokens = np.zeros((len(prompts), p_len), np.int32)
  for i, p in enumerate(prompts):
    tokens[i, :len(p)] = p
  lengths = np.array([len(p) for p in prompts], np.int32)
  seeds = np.asarray(seeds if seeds is not None else
                     [params.seed + i for i in range(len(prompts))], np.uint32)
  stops = params.stop_sequences or ((-1,),)
  stop = np.full((len(stops), max(len(s) for s in stops)), -1, np.int32)
  for i, s in enumerate(stops):
    stop[i, stop.shape[1] - len(s):] = s
  graphdef, state = nnx.split(model)
  out, logprobs, counts, done = _generate(
      graphdef, state, jnp.asarray(tokens), jnp.asarray(lengths), jnp.asarray(seeds),
      jnp.asarray(stop), jnp.float32(params.temperature), jnp.float32(params.top_p),
      None if adapters is None else adapters.params,
      None if adapters is None else jnp.asarray(adapters.ids, jnp.int32),
      max_tokens=params.max_tokens, cache_len=cache_len, top_k=min(params.top_k, c.vocab_size),
      scale=1.0 if adapters is None else float(adapters.scale))
  out, logprobs, counts, done = map(np.asarray, (out, logprobs, counts, done))
  return [SampledSequence(out[i, :counts[i]].tolist(), logprobs[i, :counts[i]].tolist(),
                          "stop" if done[i] else "length") for i in range(len(prompts))]
