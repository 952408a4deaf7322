"""Gradient-based meta-learners: MAML, first-order MAML, Meta-SGD, ANIL and Reptile.

All five share one inner step, plain gradient descent on the support loss,

.. math::  \\phi_{t+1} = \\phi_t - \\alpha \\odot \\nabla_\\phi L_{\\text{support}}(\\phi_t),
           \\qquad \\phi_0 = \\theta_{\\text{init}},

and differ in what is meta-learned and how the meta-gradient flows:

* **MAML** (Finn et al. 2017): ``theta`` is the initialisation; backprop through the unroll
  gives the exact (second-order) meta-gradient.
* **first-order MAML**: the inner gradient is treated as a constant (``stop_gradient``), so
  ``d phi_T / d theta = I`` and the meta-gradient is the query gradient at ``phi_T``.
* **Meta-SGD** (Li et al. 2017): ``alpha`` is a per-parameter meta-parameter too.
* **ANIL** (Raghu et al. 2020): only the head is adapted; the body is meta-learned through
  the (second-order) head updates.
* **Reptile** (Nichol et al. 2018): the same inner loop; its meta-update ``theta - phi_T`` is
  produced by :func:`metalearn.estimators.reptile`, not by differentiating the unroll.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from metalearn.tasks import Episode, support_loss

ADAPT_CHOICES = ("all", "head")


def init_meta_params(params, adapted, inner_lr: float, learn_inner_lr: bool) -> dict:
  """``{"params": params}``, plus ``{"inner_lr": alpha}`` (one step size per ``adapted``
  parameter, initialised to ``inner_lr``) when step sizes are meta-learned (Meta-SGD). Shared
  by every learner whose inner loop is SGD from meta-learned weights, so their meta-parameters
  are interchangeable."""
  theta = {"params": params}
  if learn_inner_lr:
    theta["inner_lr"] = jax.tree.map(lambda p: jnp.full_like(p, inner_lr), adapted)
  return theta


@dataclasses.dataclass(frozen=True)
class GradientLearner:
  """A learner whose inner loop is gradient descent from a meta-learned initialisation.

  Meta-parameters are ``{"params": init}`` plus ``{"inner_lr": alpha}`` (a pytree shaped like
  the adapted parameters) when ``learn_inner_lr``.

  Attributes:
    init_fn: ``key -> params`` of the network.
    apply_fn: ``(params, x) -> predictions``.
    loss_fn: ``(predictions, targets) -> scalar``.
    inner_lr: inner step size (the initial value of ``alpha`` when it is learned).
    first_order: drop second-order terms (first-order MAML).
    learn_inner_lr: meta-learn per-parameter step sizes (Meta-SGD).
    adapt: ``"all"`` parameters, or only the ``"head"`` (ANIL).
  """
  init_fn: Callable
  apply_fn: Callable
  loss_fn: Callable
  inner_lr: float
  first_order: bool = False
  learn_inner_lr: bool = False
  adapt: str = "all"

  def __post_init__(self):
    if self.adapt not in ADAPT_CHOICES:
      raise ValueError(f"adapt must be one of {ADAPT_CHOICES}, got {self.adapt!r}")

  def _adapted(self, params):
    return params if self.adapt == "all" else params["head"]

  def _merge(self, theta, state):
    return state if self.adapt == "all" else {**theta["params"], "head": state}

  def init(self, key):
    params = self.init_fn(key)
    return init_meta_params(params, self._adapted(params), self.inner_lr, self.learn_inner_lr)

  def init_state(self, theta, episode: Episode):
    del episode
    return self._adapted(theta["params"])

  def step(self, theta, state, episode: Episode):
    def loss(adapted):  # over the support points in use (a steered family masks the rest)
      preds = self.apply_fn(self._merge(theta, adapted), episode.support_x)
      return support_loss(self.loss_fn, preds, episode.support_y, episode.info)

    grads = jax.grad(loss)(state)
    if self.first_order:
      grads = jax.lax.stop_gradient(grads)
    if self.learn_inner_lr:
      return jax.tree.map(lambda p, g, a: p - a * g, state, grads, theta["inner_lr"])
    return jax.tree.map(lambda p, g: p - self.inner_lr * g, state, grads)

  def predict(self, theta, state, x):
    return self.apply_fn(self._merge(theta, state), x)

  def query_loss(self, theta, state, episode: Episode):
    return self.loss_fn(self.predict(theta, state, episode.query_x), episode.query_y)
