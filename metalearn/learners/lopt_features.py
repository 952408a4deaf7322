"""Input features shared by the learned optimizers (all per tensor, all pure).

* accumulators: momenta :math:`m_\\beta \\leftarrow \\beta m_\\beta + (1-\\beta) g` at several
  decays, the second moment :math:`v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2`, and Adafactor's
  factored second moment (row and column means of :math:`g^2` of a matrix, whose outer product
  over their mean estimates :math:`v` at :math:`O(n + m)` memory);
* normalisation: each feature is divided by its root mean square over the tensor, so the
  optimizer sees the same inputs whatever the scale of a layer's gradients or weights;
* training progress: :math:`\\tanh(\\tfrac{t}{T s})` at several scales ``s`` of the horizon T.
"""

import jax
import jax.numpy as jnp

TIME_SCALES = (0.03, 0.1, 0.3, 1.0, 3.0)
EPS = 1e-8


def time_features(step: jax.Array, num_steps: jax.Array) -> jax.Array:
  """``[len(TIME_SCALES)]`` features of how far training is."""
  frac = step.astype(jnp.float32) / jnp.maximum(num_steps, 1.0)
  return jnp.tanh(frac / jnp.asarray(TIME_SCALES))


def rms_normalise(f: jax.Array) -> jax.Array:
  """``f [..., F]`` divided, feature by feature, by its root mean square over the tensor."""
  axes = tuple(range(f.ndim - 1))
  return f * jax.lax.rsqrt(jnp.mean(jnp.square(f), axis=axes, keepdims=True) + 1e-12)


def ema(old, new, decay):
  return decay * old + (1.0 - decay) * new


def factored_init(p: jax.Array):
  """Adafactor accumulators of a tensor: (row, col) of a matrix (leading dims of larger ones
  are kept), the full second moment of a vector or scalar."""
  if p.ndim < 2:
    return (jnp.zeros_like(p), jnp.zeros(()))
  return (jnp.zeros(p.shape[:-1]), jnp.zeros(p.shape[:-2] + p.shape[-1:]))


def factored_update(acc, g: jax.Array, decay: float):
  g2 = jnp.square(g) + 1e-30
  if g.ndim < 2:
    return (ema(acc[0], g2, decay), acc[1])
  return (ema(acc[0], jnp.mean(g2, -1), decay), ema(acc[1], jnp.mean(g2, -2), decay))


def factored_rsqrt(acc, shape) -> jax.Array:
  """:math:`\\hat v^{-1/2}` from Adafactor accumulators, broadcast to ``shape``."""
  if len(shape) < 2:
    return jax.lax.rsqrt(acc[0] + EPS)
  row, col = acc
  v = row[..., :, None] * col[..., None, :] / (jnp.mean(row, -1)[..., None, None] + 1e-30)
  return jax.lax.rsqrt(v + EPS)


def mlp_params(key: jax.Array, sizes, last_scale: float) -> list[dict]:
  """A small MLP's parameters (LeCun-normal; the last layer scaled by ``last_scale``)."""
  keys = jax.random.split(key, len(sizes) - 1)
  layers = []
  for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
    scale = last_scale if i == len(sizes) - 2 else 1.0
    layers.append({"w": jax.random.normal(k, (a, b)) * (scale / jnp.sqrt(a)),
                   "b": jnp.zeros(b)})
  return layers


def mlp_apply(layers: list[dict], x: jax.Array, first_bias: jax.Array | None = None):
  """ReLU MLP; ``first_bias`` is added to the first layer (shared inputs folded in once)."""
  for i, layer in enumerate(layers):
    x = x @ layer["w"] + layer["b"]
    if i == 0 and first_bias is not None:
      x = x + first_bias
    if i < len(layers) - 1:
      x = jax.nn.relu(x)
  return x
