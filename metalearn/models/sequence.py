"""Sequence models for in-context learners (flax linen), each mapping one prompt's tokens
``[L, D_in]`` to outputs ``[L, D_out]``; batch over prompts with ``vmap``. Registered as
``transformer``, ``lstm`` and ``lsa``.

* :class:`Transformer`: GPT-2 style causal transformer (pre-LayerNorm, learned positions,
  GELU MLP), read-in and read-out linear layers as in Garg et al. (2022).
* :class:`LSTM`: stacked LSTM over the tokens (causal by construction).
* :class:`LinearSelfAttention`: von Oswald et al. (2023)'s linear self-attention: no softmax,
  no MLP, no normalisation; layer ``l`` updates every token
  ``e_j <- e_j + W_PV^l (1/k sum_{i<k} e_i e_i^T) W_KQ^l e_j`` over the ``k`` context tokens.
  One layer with ``W_KQ = [[I, 0], [0, 0]]`` and ``W_PV = [[0, 0], [0, eta]]`` reads out
  ``eta/k sum_i y_i x_i . x_q``: one gradient-descent step from ``w = 0``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from metalearn.models.base import MODELS, ModelSpec
from metalearn.registry import ConfigError, Option


class _Block(nn.Module):
  width: int
  num_heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, h_LW, mask_LL):
    L, H = h_LW.shape[0], self.num_heads
    qkv = nn.Dense(3 * self.width, name="qkv")(nn.LayerNorm(name="ln_1")(h_LW))
    q, k, v = jnp.split(qkv.reshape(L, 3, H, self.width // H), 3, axis=1)
    att_HLL = jnp.einsum("qhd,khd->hqk", q[:, 0], k[:, 0]) / jnp.sqrt(self.width // H)
    att_HLL = jax.nn.softmax(jnp.where(mask_LL, att_HLL, -1e30), axis=-1)
    out = jnp.einsum("hqk,khd->qhd", att_HLL, v[:, 0]).reshape(L, self.width)
    h_LW = h_LW + nn.Dense(self.width, name="proj")(out)
    m = nn.Dense(self.mlp_ratio * self.width, name="fc")(nn.LayerNorm(name="ln_2")(h_LW))
    return h_LW + nn.Dense(self.width, name="fc_proj")(nn.gelu(m))


class Transformer(nn.Module):
  """Causal pre-LN transformer over ``[L, D_in]`` tokens; ``max_len >= L``."""
  width: int
  num_layers: int
  num_heads: int
  out_dim: int
  max_len: int
  mlp_ratio: int = 4

  @nn.compact
  def __call__(self, tokens_LD):
    L = tokens_LD.shape[0]
    pos = self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.width))
    h = nn.Dense(self.width, name="read_in")(tokens_LD) + pos[:L]
    causal = jnp.tril(jnp.ones((L, L), bool))
    for i in range(self.num_layers):
      h = _Block(self.width, self.num_heads, self.mlp_ratio, name=f"block_{i}")(h, causal)
    return nn.Dense(self.out_dim, name="read_out")(nn.LayerNorm(name="ln_f")(h))


class LSTM(nn.Module):
  """``num_layers`` stacked LSTMs of ``width`` units over ``[L, D_in]`` tokens."""
  width: int
  num_layers: int
  out_dim: int

  @nn.compact
  def __call__(self, tokens_LD):
    h = nn.Dense(self.width, name="read_in")(tokens_LD)[None]
    for i in range(self.num_layers):
      h = nn.RNN(nn.OptimizedLSTMCell(self.width), name=f"lstm_{i}")(h)
    return nn.Dense(self.out_dim, name="read_out")(h[0])


class LinearSelfAttention(nn.Module):
  """von Oswald's LSA over context tokens ``[N, E]`` and query tokens ``[Q, E]``.

  Only the ``num_context`` first context tokens act as keys/values (a traced int, so one
  compiled program serves every prefix); every token, context or query, is updated. Returns
  the query tokens after the last layer.
  """
  num_layers: int
  init_scale: float = 0.01

  @nn.compact
  def __call__(self, context_NE, query_QE, num_context):
    E = context_NE.shape[1]
    init = nn.initializers.normal(self.init_scale)
    keep_N1 = (jnp.arange(context_NE.shape[0]) < num_context)[:, None]
    tokens = jnp.concatenate([context_NE, query_QE])
    for i in range(self.num_layers):
      w_kq = self.param(f"w_kq_{i}", init, (E, E))
      w_pv = self.param(f"w_pv_{i}", init, (E, E))
      ctx = tokens[:context_NE.shape[0]] * keep_N1
      s_EE = ctx.T @ ctx / jnp.maximum(num_context, 1)
      tokens = tokens + tokens @ (w_pv @ s_EE @ w_kq).T
    return tokens[context_NE.shape[0]:]


def _check_transformer(config) -> None:
  m = config.model
  if m.width % m.num_heads:
    raise ConfigError(f"model.width ({m.width}) must be a multiple of model.num_heads "
                      f"({m.num_heads})")


MODELS.register(ModelSpec(
    name="transformer", doc="GPT-2 style causal transformer", kind="sequence",
    layouts=("interleaved", "packed"), check=_check_transformer,
    build=lambda m, input_shape, out_dim, max_len: Transformer(
        m.width, m.num_layers, m.num_heads, out_dim, max_len, m.mlp_ratio),
    options=dict(width=Option(64, ge=1, doc="model width"),
                 num_layers=Option(3, ge=1, doc="transformer blocks"),
                 num_heads=Option(2, ge=1, doc="attention heads (divide width)"),
                 mlp_ratio=Option(4, ge=1, doc="MLP width / model width"))))

MODELS.register(ModelSpec(
    name="lstm", doc="stacked LSTM over the tokens", kind="sequence",
    layouts=("interleaved", "packed"),
    build=lambda m, input_shape, out_dim, max_len: LSTM(m.width, m.num_layers, out_dim),
    options=dict(width=Option(64, ge=1, doc="LSTM units"),
                 num_layers=Option(1, ge=1, doc="stacked LSTMs"))))

MODELS.register(ModelSpec(
    name="lsa", doc="linear self-attention (von Oswald et al. 2023)", kind="sequence",
    layouts=("prefix",),
    build=lambda m, input_shape, out_dim, max_len: LinearSelfAttention(m.num_layers,
                                                                       m.init_scale),
    options=dict(num_layers=Option(1, ge=1, doc="LSA layers"),
                 init_scale=Option(0.01, gt=0, doc="scale of the initial weights"))))
