"""A learned hyperparameter controller: per-tensor step size and momentum from training statistics.

Instead of an update per coordinate, a small MLP shared by all tensors reads each tensor's
training statistics and sets that tensor's hyperparameters of an Adam-style update:

.. math::  (a, c) = \\mathrm{MLP}_\\theta(\\phi_{\\text{tensor}}), \\quad
           \\eta = \\eta_0 e^{a}, \\quad \\beta_1 = \\sigma(\\mathrm{logit}(0.9) + c),

.. math::  m \\leftarrow \\beta_1 m + (1-\\beta_1) g, \\quad
           v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2, \\quad
           \\Delta p = -\\eta\\, m / (\\sqrt{v / (1-\\beta_2^t)} + \\epsilon).

The features :math:`\\phi` are the log mean squares of the gradient, parameters and momentum,
the log of the mean :math:`|m|/\\sqrt v` (how consistent the gradient is), the loss relative
to the first loss seen and its smoothed trend, and the training-progress features. The readout
starts at zero, so the untrained controller *is* Adam at ``init_lr``: meta-training moves it
from a sound optimizer, and the rule needs the loss (``needs_loss``; exported as
``optax.GradientTransformationExtraArgs`` taking ``loss=``).
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.learners import lopt_features as F
from metalearn.learners.optimizer import register_learned_optimizer
from metalearn.registry import Option

_BETA2 = 0.999
_NUM_TENSOR_FEATURES = 6


class HyperLOptState(NamedTuple):
  momentum: Any
  second: Any
  step: jax.Array
  num_steps: jax.Array
  first_loss: jax.Array
  loss_trend: jax.Array  # EMA of log(loss / first_loss)


@dataclasses.dataclass(frozen=True)
class HyperLOpt:
  """Per-tensor learning-rate and momentum controller.

  Attributes:
    hidden: hidden layer widths of the controller MLP.
    init_lr: :math:`\\eta_0`, the step size before meta-training.
  """
  hidden: tuple[int, ...] = (32,)
  init_lr: float = 1e-3
  needs_loss = True

  def init(self, key):
    layers = F.mlp_params(key, (_NUM_TENSOR_FEATURES + len(F.TIME_SCALES), *self.hidden, 2),
                          1.0)
    layers[-1] = jax.tree.map(jnp.zeros_like, layers[-1])
    return {"mlp": layers}

  def init_state(self, theta, params, num_steps):
    del theta
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)
    return HyperLOptState(zeros(), zeros(), jnp.zeros((), jnp.int32),
                          jnp.asarray(num_steps, jnp.float32), jnp.full((), jnp.nan),
                          jnp.zeros(()))

  def update(self, theta, state: HyperLOptState, grads, params, loss):
    if loss is None:
      raise ValueError("HyperLOpt needs the loss: call update(..., loss=loss)")
    step = state.step + 1
    first = jnp.where(jnp.isnan(state.first_loss), loss, state.first_loss)
    rel = jnp.log(loss + 1e-12) - jnp.log(first + 1e-12)
    trend = F.ema(state.loss_trend, rel, 0.9)
    second = jax.tree.map(lambda v, g: F.ema(v, jnp.square(g), _BETA2), state.second, grads)
    v_hat = jax.tree.map(lambda v: v / (1.0 - _BETA2 ** step.astype(jnp.float32)), second)
    shared = jnp.concatenate([jnp.stack([jnp.clip(rel, -10, 10), jnp.clip(trend, -10, 10)]),
                              F.time_features(state.step, state.num_steps)])
    log_ms = lambda x: jnp.log(jnp.mean(jnp.square(x)) + 1e-16)

    def per_tensor(g, p, m, v):
      consistency = jnp.log(jnp.mean(jnp.abs(m) * jax.lax.rsqrt(v + 1e-16)) + 1e-8)
      phi = jnp.concatenate([jnp.stack([log_ms(g) / 10, log_ms(p) / 10, log_ms(m) / 10,
                                        consistency]), shared])
      a, c = F.mlp_apply(theta["mlp"], phi)
      lr = self.init_lr * jnp.exp(jnp.clip(a, -10.0, 10.0))
      beta1 = jax.nn.sigmoid(np.log(9.0) + c)
      m = beta1 * m + (1.0 - beta1) * g
      return m, -lr * m / (jnp.sqrt(v) + 1e-8)

    pairs = jax.tree.map(per_tensor, grads, params, state.momentum, v_hat)
    treedef = jax.tree.structure(grads)
    flat = treedef.flatten_up_to(pairs)
    momentum = treedef.unflatten([m for m, _ in flat])
    updates = treedef.unflatten([u for _, u in flat])
    return updates, HyperLOptState(momentum, second, step, state.num_steps, first, trend)


OPTIONS = dict(
        hidden=Option((32,), ge=1, element=int, doc="hidden widths of the controller MLP"),
        init_lr=Option(1e-3, gt=0, doc="eta_0, the step size before meta-training"))

register_learned_optimizer("hyper_lopt", HyperLOpt, OPTIONS, "learned per-tensor step size and momentum controller")
