"""A per-parameter MLP learned optimizer (Metz et al. 2022, small_fc_lopt / AdafacMLP).

Every scalar parameter is updated by the same small MLP applied to its own features:

.. math::  (d, s) = \\mathrm{MLP}_\\theta(\\phi), \\qquad
           \\Delta p = -\\lambda_1\\, d \\, \\exp(\\lambda_2 s),

with ``step_mult`` :math:`\\lambda_1` and ``exp_mult`` :math:`\\lambda_2` keeping the initial
steps small. The features :math:`\\phi` (:mod:`metalearn.learners.lopt_features`) are, per
parameter and normalised over each tensor:

* ``features="full"`` (19 inputs, like learned_optimization's MLPLOpt): gradient, parameter,
  momenta at decays 0.5/0.9/0.99/0.999, :math:`\\sqrt{v}`, each momentum and the gradient times
  :math:`v^{-1/2}`, gradient and 0.9-momentum times Adafactor's factored :math:`\\hat v^{-1/2}`,
  and 5 training-progress features;
* ``features="adafactor"`` (13 inputs, for a small, cheap optimizer): gradient, parameter,
  momenta at 0.9/0.99, the three of them times :math:`\\hat v^{-1/2}` and :math:`\\hat v^{1/2}`
  from factored statistics only (no per-parameter second moment), and the progress features.

The progress features are the same for every parameter, so their first-layer product is
computed once per step and added as a bias instead of being repeated per parameter.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.learners import lopt_features as F
from metalearn.learners.optimizer import register_learned_optimizer
from metalearn.registry import Option, check_value

FEATURE_SETS = ("full", "adafactor")
_DECAYS = {"full": (0.5, 0.9, 0.99, 0.999), "adafactor": (0.9, 0.99)}
_BETA2 = 0.999


class MLPLOptState(NamedTuple):
  momenta: Any      # per tensor: [num_decays, *shape]
  second: Any       # per tensor: full v (``full``) or ()
  factored: Any     # per tensor: Adafactor (row, col) accumulators
  step: jax.Array
  num_steps: jax.Array


@dataclasses.dataclass(frozen=True)
class MLPLOpt:
  """Per-parameter MLP learned optimizer.

  Attributes:
    hidden: hidden layer widths of the per-parameter MLP.
    features: one of :data:`FEATURE_SETS`.
    step_mult: :math:`\\lambda_1`.
    exp_mult: :math:`\\lambda_2`.
  """
  hidden: tuple[int, ...] = (32, 32)
  features: str = "full"
  step_mult: float = 1e-3
  exp_mult: float = 1e-3
  needs_loss = False

  def __post_init__(self):
    check_value("features", self.features, OPTIONS["features"])

  @property
  def num_param_features(self) -> int:
    k = len(_DECAYS[self.features])
    return 2 + k + 1 + k + 1 + 2 if self.features == "full" else 2 + k + (1 + k) + 1

  @property
  def num_features(self) -> int:
    return self.num_param_features + len(F.TIME_SCALES)

  def init(self, key):
    return {"mlp": F.mlp_params(key, (self.num_features, *self.hidden, 2), 1e-2)}

  def init_state(self, theta, params, num_steps):
    del theta
    decays = _DECAYS[self.features]
    zeros = lambda p: jnp.zeros((len(decays),) + p.shape, p.dtype)
    second = (jax.tree.map(jnp.zeros_like, params) if self.features == "full" else ())
    return MLPLOptState(jax.tree.map(zeros, params), second,
                        jax.tree.map(F.factored_init, params), jnp.zeros((), jnp.int32),
                        jnp.asarray(num_steps, jnp.float32))

  def _param_features(self, g, p, m, v, fac):
    """``[F, n]`` features of one tensor's ``n`` entries (feature-major: each feature is
    contiguous, so stacking and normalising them are cheap), normalised per feature."""
    decays = _DECAYS[self.features]
    fac_rsqrt = F.factored_rsqrt(fac, p.shape)
    if self.features == "full":
      v_rsqrt = jax.lax.rsqrt(v + F.EPS)
      feats = [g, p, *m, jnp.sqrt(v), *(mi * v_rsqrt for mi in m), g * v_rsqrt,
               g * fac_rsqrt, m[decays.index(0.9)] * fac_rsqrt]
    else:
      feats = [g, p, *m, g * fac_rsqrt, *(mi * fac_rsqrt for mi in m), 1.0 / fac_rsqrt]
    x = jnp.stack([f.reshape(-1) for f in feats])
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=1, keepdims=True) + 1e-12)

  def update(self, theta, state: MLPLOptState, grads, params, loss):
    del loss
    decays = jnp.asarray(_DECAYS[self.features])
    step = state.step + 1
    momenta = jax.tree.map(
        lambda m, g: F.ema(m, g[None], decays.reshape((-1,) + (1,) * g.ndim)),
        state.momenta, grads)
    correction = 1.0 - _BETA2 ** step.astype(jnp.float32)
    second = (jax.tree.map(lambda v, g: F.ema(v, jnp.square(g), _BETA2), state.second, grads)
              if self.features == "full" else ())
    factored = jax.tree.map(lambda a, g: F.factored_update(a, g, _BETA2), state.factored, grads,
                            is_leaf=lambda x: isinstance(x, tuple))
    layers = theta["mlp"]
    nf = self.num_param_features
    time_bias = F.time_features(state.step, state.num_steps) @ layers[0]["w"][nf:]

    def features(g, p, m, v, fac):
      fac = tuple(a / correction for a in fac)
      v = v / correction if self.features == "full" else None
      return self._param_features(g, p, list(m), v, fac)  # [F, n]

    seconds = second if self.features == "full" else jax.tree.map(lambda g: None, grads)
    feats = jax.tree.map(features, grads, params, momenta, seconds, factored,
                         is_leaf=lambda x: x is None or isinstance(x, tuple))
    # one MLP call over every tensor's entries side by side: the same numbers as one call per
    # tensor, with one batched matmul per layer instead of one small matmul per tensor
    leaves, treedef = jax.tree.flatten(feats)
    x = jnp.concatenate(leaves, axis=1)  # [F, N]
    h = layers[0]["w"][:nf].T @ x + (layers[0]["b"] + time_bias)[:, None]
    for layer in layers[1:]:
      h = layer["w"].T @ jax.nn.relu(h) + layer["b"][:, None]
    steps = -self.step_mult * h[0] * jnp.exp(self.exp_mult * h[1])
    splits = np.cumsum([leaf.shape[1] for leaf in leaves])[:-1]
    updates = jax.tree.map(lambda u, p: u.reshape(p.shape),
                           jax.tree.unflatten(treedef, jnp.split(steps, splits)), params)
    return updates, MLPLOptState(momenta, second, factored, step, state.num_steps)


OPTIONS = dict(
        hidden=Option((32, 32), ge=1, element=int, doc="hidden widths of the per-parameter MLP"),
        features=Option("full", choices=FEATURE_SETS, doc="the feature set (see above)"),
        step_mult=Option(1e-3, gt=0, doc="lambda_1, the update's scale"),
        exp_mult=Option(1e-3, ge=0, doc="lambda_2, the exponent's scale"))

register_learned_optimizer("mlp_lopt", MLPLOpt, OPTIONS, "per-parameter MLP learned optimizer (Metz et al. 2022)")
