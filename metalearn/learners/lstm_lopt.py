"""A coordinate-wise LSTM learned optimizer (Andrychowicz et al. 2016).

One small LSTM, shared by every scalar parameter, reads that coordinate's preprocessed gradient
and keeps its own hidden state per coordinate; a linear readout times ``output_scale`` is the
update. The paper's preprocessing (their appendix A) maps a gradient to two bounded inputs,

.. math::  g \\mapsto \\begin{cases} (\\log|g| / p,\\ \\mathrm{sign}(g)) & |g| \\geq e^{-p} \\\\
                                       (-1,\\ e^{p} g) & \\text{otherwise} \\end{cases}
           \\qquad (p = 10),

so the LSTM sees gradients spanning many orders of magnitude on one scale. State memory is
``2 * num_layers * hidden_size`` floats per parameter: the price of this design.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.learners.optimizer import register_learned_optimizer
from metalearn.registry import Option

_P = 10.0


def preprocess(g: jax.Array) -> jax.Array:
  """``[..., 2]`` bounded inputs of a gradient tensor (the paper's log/sign preprocessing)."""
  big = jnp.abs(g) >= np.exp(-_P)
  log_part = jnp.where(big, jnp.log(jnp.abs(g) + 1e-30) / _P, -1.0)
  sign_part = jnp.where(big, jnp.sign(g), np.exp(_P) * g)
  return jnp.stack([log_part, sign_part], axis=-1)


class LSTMLOptState(NamedTuple):
  hidden: Any  # per tensor: [num_layers, 2 (h, c), *shape, hidden_size]
  step: jax.Array


@dataclasses.dataclass(frozen=True)
class LSTMLOpt:
  """Coordinate-wise LSTM optimizer.

  Attributes:
    hidden_size: LSTM units (the paper: 20).
    num_layers: stacked LSTM layers (the paper: 2).
    output_scale: multiplies the readout (the paper: 0.1).
  """
  hidden_size: int = 20
  num_layers: int = 2
  output_scale: float = 0.1
  needs_loss = False

  def init(self, key):
    H = self.hidden_size
    keys = jax.random.split(key, self.num_layers + 1)
    cells = []
    for i in range(self.num_layers):
      fan_in = (2 if i == 0 else H) + H
      w = jax.random.normal(keys[i], (fan_in, 4 * H)) / np.sqrt(fan_in)
      b = jnp.zeros(4 * H).at[H:2 * H].set(1.0)  # forget gate bias 1
      cells.append({"w": w, "b": b})
    readout = {"w": jax.random.normal(keys[-1], (H, 1)) * (0.01 / np.sqrt(H)),
               "b": jnp.zeros(1)}
    return {"cells": cells, "readout": readout}

  def init_state(self, theta, params, num_steps):
    del theta, num_steps
    zeros = lambda p: jnp.zeros((self.num_layers, 2) + p.shape + (self.hidden_size,), p.dtype)
    return LSTMLOptState(jax.tree.map(zeros, params), jnp.zeros((), jnp.int32))

  def update(self, theta, state: LSTMLOptState, grads, params, loss):
    del params, loss
    H = self.hidden_size

    def per_tensor(g, hc):
      x, new = preprocess(g), []
      for i, cell in enumerate(theta["cells"]):
        h, c = hc[i, 0], hc[i, 1]
        z = jnp.concatenate([x, h], axis=-1) @ cell["w"] + cell["b"]
        i_g, f_g, o_g, u = (z[..., k * H:(k + 1) * H] for k in range(4))
        c = jax.nn.sigmoid(f_g) * c + jax.nn.sigmoid(i_g) * jnp.tanh(u)
        h = jax.nn.sigmoid(o_g) * jnp.tanh(c)
        new.append(jnp.stack([h, c]))
        x = h
      out = x @ theta["readout"]["w"] + theta["readout"]["b"]
      return self.output_scale * out[..., 0], jnp.stack(new)

    pairs = jax.tree.map(per_tensor, grads, state.hidden)
    treedef = jax.tree.structure(grads)
    flat = treedef.flatten_up_to(pairs)
    updates = treedef.unflatten([u for u, _ in flat])
    hidden = treedef.unflatten([h for _, h in flat])
    return updates, LSTMLOptState(hidden, state.step + 1)


OPTIONS = dict(
        hidden_size=Option(20, ge=1, doc="LSTM units"),
        num_layers=Option(2, ge=1, doc="stacked LSTM layers"),
        output_scale=Option(0.1, gt=0, doc="multiplies the readout"))

register_learned_optimizer("lstm_lopt", LSTMLOpt, OPTIONS, "coordinate-wise LSTM learned optimizer (Andrychowicz et al. 2016)")
