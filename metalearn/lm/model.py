"""The decoder LM in flax NNX: Llama / Qwen3 layers, stacked and run under ``lax.scan``.

Numerics follow Hugging Face transformers' ``LlamaForCausalLM`` and ``Qwen3ForCausalLM``
(tests/lm/test_parity.py compares logits): RMSNorm in float32 then cast back, rotate-half
RoPE with float32 angles, softmax in float32, SwiGLU. Layouts are JAX's: kernels are
``[in, out]``, attention projections keep their head axis (``[embed, heads, head_dim]``) so
that tensor parallelism splits whole heads. :mod:`metalearn.lm.hf` converts to and from HF's
tensors.

The decoder's layers are one module whose every parameter has a leading ``layers`` axis
(created with ``nnx.vmap``), run by ``lax.scan``: compilation takes one layer's time whatever
the depth, and ``remat`` wraps the scanned layer in ``jax.checkpoint``.

Calling the model::

  logits, cache = model(tokens)                              # training: causal, no cache
  logits, cache = model(tokens, positions=p, cache=cache)   # prefill / decode with a KV cache

With a cache, each token's key and value are written to the cache slot equal to its position
(per row), and a query attends to the slots at or before its position: right-padded prompts of
different lengths prefill together, and each row then decodes from its own length (see
:mod:`metalearn.lm.generate`). Without a cache, ``attention_mask`` ``[B, S]`` marks the real
tokens; padding keys are never attended to.
"""

import functools
from typing import NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp

from metalearn.lm import lora as lora_lib
from metalearn.lm import rope
from metalearn.lm.config import LMConfig
from metalearn.lm.sharding import constrain

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16,
          "float64": jnp.float64}


def _wide(dtype):
  """The dtype reductions run in: float32, or float64 for float64 inputs."""
  return jnp.promote_types(dtype, jnp.float32)
REMAT_POLICIES = {"full": None, "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


class KVCache(NamedTuple):
  """Keys and values of every layer, ``[layers, batch, length, kv_heads, head_dim]``."""
  k: jax.Array
  v: jax.Array

  @property
  def length(self) -> int:
    return self.k.shape[2]


def init_cache(c: LMConfig, batch: int, length: int, dtype=None) -> KVCache:
  """An empty cache for ``batch`` sequences of up to ``length`` tokens."""
  shape = (c.num_layers, batch, length, c.num_kv_heads, c.head_dim)
  dtype = dtype or DTYPES[c.dtype]
  return KVCache(constrain(jnp.zeros(shape, dtype), CACHE_AXES),
                 constrain(jnp.zeros(shape, dtype), CACHE_AXES))


CACHE_AXES = ("layers", "batch", "length", "kv_heads", "head_dim")


def _param(rngs, shape, axes, c: LMConfig, init=None):
  init = init or nnx.initializers.normal(c.initializer_range)
  return nnx.Param(init(rngs.params(), shape, DTYPES[c.param_dtype]), out_sharding=axes,
                   eager_sharding=False)


def _ones(shape, axes, c: LMConfig):
  return nnx.Param(jnp.ones(shape, DTYPES[c.param_dtype]), out_sharding=axes,
                   eager_sharding=False)


def _zeros(shape, axes, c: LMConfig):
  return nnx.Param(jnp.zeros(shape, DTYPES[c.param_dtype]), out_sharding=axes,
                   eager_sharding=False)


class RMSNorm(nnx.Module):
  """``weight * x / rms(x)`` over the last axis, computed in float32 (as HF does)."""

  def __init__(self, dim: int, c: LMConfig, axis_name: str = "norm"):
    self.weight = _ones((dim,), (axis_name,), c)
    self.eps = c.rms_norm_eps

  def __call__(self, x):
    dtype = x.dtype
    x32 = x.astype(_wide(dtype))
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.weight[...].astype(dtype) * y.astype(dtype)


class Attention(nnx.Module):
  """Grouped-query self-attention with RoPE, optional per-head q/k RMSNorm (Qwen3)."""

  def __init__(self, c: LMConfig, rngs: nnx.Rngs):
    d, h, kv, hd = c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim
    self.c = c
    self.q = _param(rngs, (d, h, hd), ("embed", "heads", "head_dim"), c)
    self.k = _param(rngs, (d, kv, hd), ("embed", "kv_heads", "head_dim"), c)
    self.v = _param(rngs, (d, kv, hd), ("embed", "kv_heads", "head_dim"), c)
    self.o = _param(rngs, (h, hd, d), ("heads", "head_dim", "embed"), c)
    if c.attention_bias:
      self.q_bias = _zeros((h, hd), ("heads", "head_dim"), c)
      self.k_bias = _zeros((kv, hd), ("kv_heads", "head_dim"), c)
      self.v_bias = _zeros((kv, hd), ("kv_heads", "head_dim"), c)
      self.o_bias = _zeros((d,), ("embed",), c)
    if c.qk_norm:
      self.q_norm = RMSNorm(hd, c, "head_dim")
      self.k_norm = RMSNorm(hd, c, "head_dim")

  def __call__(self, x, cos, sin, positions, kv, key_mask, adapters=None):
    c, dtype = self.c, x.dtype
    q = _plus(jnp.einsum("bsd,dhk->bshk", x, self.q[...].astype(dtype)), x, adapters, "q")
    k = _plus(jnp.einsum("bsd,dhk->bshk", x, self.k[...].astype(dtype)), x, adapters, "k")
    v = _plus(jnp.einsum("bsd,dhk->bshk", x, self.v[...].astype(dtype)), x, adapters, "v")
    if c.attention_bias:
      q, k, v = (q + self.q_bias[...].astype(dtype), k + self.k_bias[...].astype(dtype),
                 v + self.v_bias[...].astype(dtype))
    if c.qk_norm:
      q, k = self.q_norm(q), self.k_norm(k)
    q, k = rope.apply(q, cos, sin), rope.apply(k, cos, sin)
    if kv is None:  # no cache: the sequence attends to itself
      keys, values, key_pos, new_kv = k, v, positions, None
    else:  # write this step's keys/values at their positions, attend to the whole cache
      rows = jnp.arange(x.shape[0])[:, None]
      keys = kv[0].at[rows, positions].set(k.astype(kv[0].dtype))
      values = kv[1].at[rows, positions].set(v.astype(kv[1].dtype))
      keys = constrain(keys, CACHE_AXES[1:])
      values = constrain(values, CACHE_AXES[1:])
      key_pos = jnp.broadcast_to(jnp.arange(keys.shape[1]), (x.shape[0], keys.shape[1]))
      new_kv = (keys, values)
      keys, values = keys.astype(dtype), values.astype(dtype)
    mask = key_pos[:, None, :] <= positions[:, :, None]  # [B, S, T]
    if key_mask is not None:
      mask &= key_mask[:, None, :]
    b, s = q.shape[:2]
    q = q.reshape(b, s, c.num_kv_heads, c.num_groups, c.head_dim)
    scores = jnp.einsum("bsngk,btnk->bngst", q, keys) * jnp.asarray(c.head_dim ** -0.5, dtype)
    scores = jnp.where(mask[:, None, None], scores.astype(_wide(dtype)),
                       jnp.finfo(_wide(dtype)).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
    out = jnp.einsum("bngst,btnk->bsngk", probs, values).reshape(b, s, c.num_heads, c.head_dim)
    out = _plus(jnp.einsum("bshk,hkd->bsd", out, self.o[...].astype(dtype)), out, adapters,
                "o")
    if c.attention_bias:
      out = out + self.o_bias[...].astype(dtype)
    return out, new_kv


def _plus(y, x, adapters, target):
  """``y`` plus the LoRA update of ``target`` on input ``x`` (none without an adapter)."""
  d = lora_lib.delta(x, adapters, target)
  return y if d is None else y + d.reshape(y.shape)


class MLP(nnx.Module):
  """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

  def __init__(self, c: LMConfig, rngs: nnx.Rngs):
    d, f = c.hidden_size, c.intermediate_size
    self.c = c
    self.gate = _param(rngs, (d, f), ("embed", "mlp"), c)
    self.up = _param(rngs, (d, f), ("embed", "mlp"), c)
    self.down = _param(rngs, (f, d), ("mlp", "embed"), c)
    if c.mlp_bias:
      self.gate_bias = _zeros((f,), ("mlp",), c)
      self.up_bias = _zeros((f,), ("mlp",), c)
      self.down_bias = _zeros((d,), ("embed",), c)

  def __call__(self, x, adapters=None):
    dtype = x.dtype
    gate = _plus(x @ self.gate[...].astype(dtype), x, adapters, "gate")
    up = _plus(x @ self.up[...].astype(dtype), x, adapters, "up")
    if self.c.mlp_bias:
      gate, up = gate + self.gate_bias[...].astype(dtype), up + self.up_bias[...].astype(dtype)
    h = constrain(jax.nn.silu(gate) * up, ("batch", "length", "mlp"))
    out = _plus(h @ self.down[...].astype(dtype), h, adapters, "down")
    return out + self.down_bias[...].astype(dtype) if self.c.mlp_bias else out


class Layer(nnx.Module):
  """One pre-norm decoder layer: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

  def __init__(self, c: LMConfig, rngs: nnx.Rngs):
    self.input_norm = RMSNorm(c.hidden_size, c)
    self.attn = Attention(c, rngs)
    self.post_attention_norm = RMSNorm(c.hidden_size, c)
    self.mlp = MLP(c, rngs)

  def __call__(self, x, cos, sin, positions, kv, key_mask, adapters=None):
    attn, kv = self.attn(self.input_norm(x), cos, sin, positions, kv, key_mask, adapters)
    x = x + attn
    x = x + self.mlp(self.post_attention_norm(x), adapters)
    return constrain(x, ("batch", "length", "embed_act")), kv


def _stacked_layers(c: LMConfig, rngs: nnx.Rngs) -> Layer:
  @nnx.split_rngs(splits=c.num_layers)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
  def make(r):
    return Layer(c, r)
  return make(rngs)


class Transformer(nnx.Module):
  """A decoder-only LM (see the module docstring); ``config`` names the architecture."""

  def __init__(self, config: LMConfig, *, rngs: nnx.Rngs):
    c = self.config = config
    self.embed = _param(rngs, (c.vocab_size, c.hidden_size), ("vocab", "embed"), c)
    self.layers = _stacked_layers(c, rngs)
    self.norm = RMSNorm(c.hidden_size, c)
    if not c.tie_word_embeddings:
      self.lm_head = _param(rngs, (c.hidden_size, c.vocab_size), ("embed", "vocab"), c)

  def __call__(self, tokens: jax.Array, *, positions: jax.Array | None = None,
               attention_mask: jax.Array | None = None, cache: KVCache | None = None,
               adapters: "lora_lib.Adapters | None" = None, return_hidden: bool = False):
    """Logits ``[B, S, vocab]`` (float32) of ``tokens`` ``[B, S]``, and the updated cache
    (``None`` without one). ``adapters``: LoRA adapters added to the projections
    (:mod:`metalearn.lm.lora`), one per example by ``adapters.ids``. ``return_hidden``: the
    final normed hidden states instead of logits."""
    c = self.config
    dtype = DTYPES[c.dtype]
    b, s = tokens.shape
    if positions is None:
      if cache is not None:
        raise ValueError("with a cache, pass positions (each token's index in its sequence)")
      positions = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (b, s))
    if cache is not None and attention_mask is not None:
      raise ValueError("with a cache, padding is handled by positions (a query attends to the "
                       "slots at or before its position); pass no attention_mask")
    # FSDP: the table is gathered whole along its embed axis where it is used (as every
    # kernel is), so the lookup's output is split only over the batch.
    table = constrain(self.embed[...], ("vocab", None))
    x = jnp.take(table, tokens, axis=0).astype(dtype)
    x = constrain(x, ("batch", "length", "embed_act"))
    cos, sin = rope.cos_sin(c, positions, dtype)
    key_mask = None if attention_mask is None else attention_mask.astype(bool)
    graphdef, state = nnx.split(self.layers)

    def body(h, xs):
      layer_state, kv, layer_adapters = xs
      layer = nnx.merge(graphdef, layer_state)
      return layer(h, cos, sin, positions, kv, key_mask,
                   None if layer_adapters is None else adapters.layer(layer_adapters))

    if c.remat != "none":
      body = jax.checkpoint(body, policy=REMAT_POLICIES[c.remat], prevent_cse=False)
    kv_in = None if cache is None else (cache.k, cache.v)
    per_layer = None if adapters is None else adapters.params.get("layers")
    x, kv_out = jax.lax.scan(body, x, (state, kv_in, per_layer))
    x = self.norm(x)
    new_cache = None if cache is None else KVCache(*kv_out)
    if return_hidden:
      return x, new_cache
    head = self.embed[...].T if c.tie_word_embeddings else self.lm_head[...]
    logits = x @ head.astype(dtype)
    if adapters is not None and "head" in adapters.params:
      logits = _plus(logits, x, adapters.layer({"head": adapters.params["head"]}), "head")
    logits = logits.astype(_wide(dtype))
    return constrain(logits, ("batch", "length", "vocab")), new_cache


def create(config: LMConfig, seed: int = 0, mesh: jax.sharding.Mesh | None = None
           ) -> Transformer:
  """A freshly initialised model; with ``mesh``, every parameter is created already sharded
  by its logical axes (no full copy on one device)."""
  if mesh is None:
    return Transformer(config, rngs=nnx.Rngs(seed))
  from metalearn.lm.sharding import param_shardings  # pylint: disable=g-import-not-at-top
  abstract = nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(seed)))
  graphdef, abstract_state = nnx.split(abstract)
  shardings = param_shardings(abstract_state, mesh)

  @functools.partial(jax.jit, out_shardings=shardings)
  def init():
    return nnx.state(Transformer(config, rngs=nnx.Rngs(seed)))

  with jax.set_mesh(mesh):
    state = init()
  return nnx.merge(graphdef, state)
