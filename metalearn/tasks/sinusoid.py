"""Sinusoid regression (Finn et al. 2017, section 5.1).

Each task is ``y = A sin(x - phi)`` with ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]`` and inputs
``x ~ U[-5, 5]``; the learner sees K support points and is scored by mean squared error on
the query points.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from metalearn.tasks.base import Episode


@functools.partial(jax.tree_util.register_dataclass, data_fields=[],
                   meta_fields=["num_support", "num_query", "amplitude", "phase", "x_range"])
@dataclasses.dataclass(frozen=True)
class SinusoidFamily:
  """K-shot sinusoid regression.

  Attributes:
    num_support: K, support points per task.
    num_query: query points per task.
    amplitude: ``(low, high)`` of the uniform amplitude prior.
    phase: ``(low, high)`` of the uniform phase prior.
    x_range: ``(low, high)`` of the uniform input distribution.
  """
  num_support: int = 10
  num_query: int = 10
  amplitude: tuple[float, float] = (0.1, 5.0)
  phase: tuple[float, float] = (0.0, math.pi)
  x_range: tuple[float, float] = (-5.0, 5.0)

  input_shape = (1,)
  output_dim = 1
  primary_metric = "mse"

  def target(self, info: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """The task's true function at ``x`` (``[..., 1]``)."""
    return info["amplitude"] * jnp.sin(x - info["phase"])

  def sample(self, key: jax.Array) -> Episode:
    k_amp, k_phase, k_x = jax.random.split(key, 3)
    info = {
        "amplitude": jax.random.uniform(k_amp, (), minval=self.amplitude[0],
                                        maxval=self.amplitude[1]),
        "phase": jax.random.uniform(k_phase, (), minval=self.phase[0], maxval=self.phase[1]),
    }
    n = self.num_support + self.num_query
    x_N1 = jax.random.uniform(k_x, (n, 1), minval=self.x_range[0], maxval=self.x_range[1])
    y_N1 = self.target(info, x_N1)
    k = self.num_support
    return Episode(x_N1[:k], y_N1[:k], x_N1[k:], y_N1[k:], info)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(predictions - targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    mse = self.loss(predictions, targets)
    return {"mse": mse, "loss": mse}
