"""Rotary position embeddings with Hugging Face's scaling options (default, linear, llama3,
yarn), computed as HF computes them (float32 inverse frequencies, rotate-half layout)."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.lm.config import LMConfig


def _base_inv_freq(theta: float, dim: int) -> np.ndarray:
  exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
  return (np.float32(1.0) / (np.float32(theta) ** exponent)).astype(np.float32)


def inv_freq_and_scale(c: LMConfig) -> tuple[np.ndarray, float]:
  """The ``head_dim / 2`` inverse frequencies and the factor cos and sin are multiplied by."""
  rope, dim, theta = c.rope, c.head_dim, c.rope_theta
  kind = rope["rope_type"]
  inv = _base_inv_freq(theta, dim)
  if kind == "default":
    return inv, 1.0
  if kind == "linear":
    return (inv / np.float32(rope["factor"])).astype(np.float32), 1.0
  if kind == "llama3":
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = (2 * math.pi / inv).astype(np.float32)
    scaled = np.where(wavelen > low_wavelen, inv / factor, inv).astype(np.float32)
    smooth = ((old / wavelen - low) / (high - low)).astype(np.float32)
    smoothed = ((1 - smooth) * scaled / factor + smooth * scaled).astype(np.float32)
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32), 1.0
  if kind == "yarn":
    return _yarn(c, rope, dim, theta)
  raise ValueError(f"rope_type {kind!r}")  # LMConfig.check refuses it first


def _mscale(scale, mscale=1.0):
  return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(c: LMConfig, rope: dict, dim: int, base: float):
  original = rope.get("original_max_position_embeddings") or c.max_position_embeddings
  factor = rope.get("factor") or c.max_position_embeddings / original
  attention = rope.get("attention_factor")
  mscale, mscale_all = rope.get("mscale"), rope.get("mscale_all_dim")
  if attention is None:
    attention = (_mscale(factor, mscale) / _mscale(factor, mscale_all)
                 if mscale and mscale_all else _mscale(factor))
  beta_fast, beta_slow = rope.get("beta_fast") or 32, rope.get("beta_slow") or 1

  def correction_dim(rotations):
    return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

  low, high = correction_dim(beta_fast), correction_dim(beta_slow)
  if rope.get("truncate", True):
    low, high = math.floor(low), math.ceil(high)
  low, high = max(low, 0), min(high, dim - 1)
  if low == high:
    high += 0.001
  ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - low) / (high - low), 0, 1)
  extrapolation_share = (1 - ramp).astype(np.float32)
  pos_freqs = (np.float32(base) ** (np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))
               ).astype(np.float32)
  extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (np.float32(factor) * pos_freqs)
  inv = interpolation * (1 - extrapolation_share) + extrapolation * extrapolation_share
  return inv.astype(np.float32), float(attention)


def cos_sin(c: LMConfig, positions: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
  """``cos, sin`` of shape ``positions.shape + (head_dim,)`` (float32 angles, then ``dtype``)."""
  inv, scale = inv_freq_and_scale(c)
  freqs = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv)
  emb = jnp.concatenate([freqs, freqs], axis=-1)
  return (jnp.cos(emb) * scale).astype(dtype), (jnp.sin(emb) * scale).astype(dtype)


def apply(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """Rotates ``x`` ``[..., S, heads, head_dim]`` by ``cos, sin`` ``[..., S, head_dim]``."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  return x * cos[..., None, :] + rotated * sin[..., None, :]
