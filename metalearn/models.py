"""Networks the learners adapt. Parameters are plain pytrees; the head is named ``head``."""

from typing import Callable, Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
  """ReLU multilayer perceptron; the last layer is called ``head`` (what ANIL adapts)."""
  hidden: Sequence[int]
  out_dim: int

  @nn.compact
  def __call__(self, x):
    for i, width in enumerate(self.hidden):
      x = nn.relu(nn.Dense(width, name=f"hidden_{i}")(x))
    return nn.Dense(self.out_dim, name="head")(x)


def mlp(hidden: Sequence[int], input_dim: int, out_dim: int
        ) -> tuple[Callable[[jax.Array], dict], Callable[[dict, jax.Array], jax.Array]]:
  """Returns ``(init_fn(key) -> params, apply_fn(params, x) -> y)`` for an :class:`MLP`."""
  module = MLP(tuple(hidden), out_dim)

  def init_fn(key):
    return module.init(key, jax.numpy.zeros((1, input_dim)))["params"]

  def apply_fn(params, x):
    return module.apply({"params": params}, x)

  return init_fn, apply_fn
