"""Networks the learners adapt (``mlp``, ``conv4``) and ``none``. Parameters are plain pytrees;
the classifier layer is ``head``.

Normalisation inside inner loops is explicit (``norm``):

* ``"batch"``: each call normalises with the statistics of the batch it is given, per channel
  (no running averages, nothing carried between calls). In MAML this means every inner step
  normalises the support set with the support set's statistics and the query loss normalises
  the query set with its own: the transductive setting of Finn et al. 2017, used by nearly all
  reported MAML numbers. Scale and offset are ordinary (meta-learned, inner-adapted) parameters.
* ``"layer"``: per-example normalisation over height, width and channels: no information
  passes between the examples of a batch (use it to compare against transductive results).
* ``"none"``.

Convolutions have two equivalent implementations (``conv_impl``, same parameters): ``"xla"``
(``lax.conv``) and ``"im2col"`` (nine shifted views concatenated, then one matmul). Under
``vmap`` over tasks with per-task weights, ``lax.conv`` becomes a grouped convolution, which
XLA:CPU runs slowly, while im2col becomes a batched matmul; ``experiments/benchmark.py``
measures both.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from metalearn.models.base import MODELS, ModelSpec, Network
from metalearn.registry import Option

NORMS = ("batch", "layer", "none")
CONV_IMPLS = ("xla", "im2col")
POOLS = ("max", "stride")


class Norm(nn.Module):
  """Normalisation with a learned per-channel scale and offset (see the module docstring)."""
  kind: str
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x):
    if self.kind == "none":
      return x
    axes = tuple(range(x.ndim - 1)) if self.kind == "batch" else tuple(range(1, x.ndim))
    mean = jnp.mean(x, axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axes, keepdims=True)
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class Conv3x3(nn.Module):
  """3x3 'SAME' convolution (kernel ``[3, 3, in, out]`` like ``nn.Conv``), stride 1 or 2."""
  features: int
  stride: int = 1
  impl: str = "xla"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, 3, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.impl == "xla":
      y = jax.lax.conv_general_dilated(x, kernel, (self.stride,) * 2, "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
      s, (h, w) = self.stride, x.shape[1:3]
      # 'SAME' padding as XLA pads it: output ceil(n / s), the odd pixel of padding goes last.
      pads = [max((-(-n // s) - 1) * s + 3 - n, 0) for n in (h, w)]
      padded = jnp.pad(x, ((0, 0), (pads[0] // 2, pads[0] - pads[0] // 2),
                           (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))
      oh, ow = -(-h // s), -(-w // s)
      patches = jnp.concatenate(
          [padded[:, dy:dy + (oh - 1) * s + 1:s, dx:dx + (ow - 1) * s + 1:s]
           for dy in range(3) for dx in range(3)], axis=-1)
      y = patches @ kernel.reshape(-1, self.features)
    return y + bias


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pooling, stride 2, 'VALID' (an odd last row/column is dropped), as the maximum of
  four strided views: its gradient is three cheap selects, unlike XLA:CPU's
  select-and-scatter for ``reduce_window``. (A reshape to ``[b, h/2, 2, w/2, 2, c]`` and a
  max over axes (2, 4) is as fast, but under ``vmap`` XLA:CPU computed wrong gradients for it
  on some shapes; tests/test_models.py checks vmapped gradients against per-task ones.)"""
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  view = lambda dy, dx: x[:, dy:h:2, dx:w:2]
  return jnp.maximum(jnp.maximum(view(0, 0), view(0, 1)), jnp.maximum(view(1, 0), view(1, 1)))


class Conv4(nn.Module):
  """The few-shot Conv-4 backbone: ``num_layers`` x [3x3 conv, norm, ReLU, 2x2 max-pool].

  ``pool="stride"`` replaces the pooling by stride-2 convolutions (Finn et al.'s Omniglot
  network). With ``out_dim`` the flattened features feed a linear ``head``; without, the
  network is an embedding (Prototypical Networks).
  """
  filters: int = 64
  num_layers: int = 4
  out_dim: int | None = None
  norm: str = "batch"
  pool: str = "max"
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_layers):
      x = Conv3x3(self.filters, 2 if self.pool == "stride" else 1, self.conv_impl,
                  name=f"conv_{i}")(x)
      x = nn.relu(Norm(self.norm, name=f"norm_{i}")(x))
      if self.pool == "max":
        x = max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1)
    return x if self.out_dim is None else nn.Dense(self.out_dim, name="head")(x)


class MLP(nn.Module):
  """ReLU multilayer perceptron on flattened inputs; the last layer is called ``head`` (what
  ANIL adapts), omitted when ``out_dim`` is None (an embedding)."""
  hidden: Sequence[int]
  out_dim: int | None
  norm: str = "none"

  @nn.compact
  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, name=f"hidden_{i}")(x)
      x = nn.relu(Norm(self.norm, name=f"norm_{i}")(x))
    return x if self.out_dim is None else nn.Dense(self.out_dim, name="head")(x)


def _init_apply(module: nn.Module, input_shape: Sequence[int]) -> Network:
  def init_fn(key):
    return module.init(key, jnp.zeros((2,) + tuple(input_shape)))["params"]

  def apply_fn(params, x):
    return module.apply({"params": params}, x)

  return Network(init_fn, apply_fn)


MODELS.register(ModelSpec(
    name="mlp", doc="ReLU multilayer perceptron on flattened inputs", kind="network",
    build=lambda m, input_shape, out_dim: _init_apply(MLP(tuple(m.hidden), out_dim, m.norm),
                                                      input_shape),
    options=dict(hidden=Option((40, 40), ge=1, element=int, doc="hidden layer widths"),
                 norm=Option("none", choices=NORMS, doc="normalisation after each layer"))))

MODELS.register(ModelSpec(
    name="conv4", doc="the few-shot Conv-4 backbone", kind="network", inputs=("image",),
    build=lambda m, input_shape, out_dim: _init_apply(
        Conv4(m.filters, m.num_layers, out_dim, m.norm, m.pool, m.conv_impl), input_shape),
    options=dict(filters=Option(64, ge=1, doc="channels of every conv layer"),
                 num_layers=Option(4, ge=1, doc="conv blocks"),
                 norm=Option("batch", choices=NORMS, doc="normalisation (see above)"),
                 pool=Option("max", choices=POOLS, doc="2x2 max-pool or stride-2 convs"),
                 conv_impl=Option("im2col", choices=CONV_IMPLS,
                                  doc="lax.conv or im2col (same parameters)"))))


def _no_model(*args, **kwargs):
  raise TypeError("model 'none' has no network: the learner trains the task's own network")


MODELS.register(ModelSpec(name="none", doc="no model (learned optimizers train the task's "
                          "network)", kind="none", inputs=(), build=_no_model))
