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

from metalearn import models
from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.registry import Option
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
class GradientLearner(Learner):
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
    num_inner_steps: T, the inner steps while meta-training.
  """
  init_fn: Callable
  apply_fn: Callable
  loss_fn: Callable
  inner_lr: float
  first_order: bool = False
  learn_inner_lr: bool = False
  adapt: str = "all"
  num_inner_steps: int = 1

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

  def describe(self) -> dict:
    return {"learner": type(self).__name__, "num_inner_steps": self.num_inner_steps,
            "inner_lr": "meta-learned" if self.learn_inner_lr else self.inner_lr,
            "first_order": self.first_order, "adapt": self.adapt}

  def reader(self, book):
    """Reads ``book`` one exercise per step with this learner's SGD (ANIL: the head only,
    like OML) from the same meta-parameters."""
    from metalearn.learners.sequential import SequentialLearner  # pylint: disable=g-import-not-at-top
    return SequentialLearner(self.init_fn, self.apply_fn, book.loss, self.inner_lr,
                             "oml" if self.adapt == "head" else "full", self.learn_inner_lr,
                             num_inner_steps=book.num_steps)


# name -> (GradientLearner options, capabilities beyond stepwise and reads_books, doc).
_VARIANTS = {
    "maml": (dict(), {"sgd_from_init"}, "MAML (Finn et al. 2017): second-order meta-gradient "
             "of a learned initialisation"),
    "fomaml": (dict(first_order=True), {"sgd_from_init"}, "first-order MAML"),
    "metasgd": (dict(learn_inner_lr=True), set(), "Meta-SGD (Li et al. 2017): per-parameter "
                "step sizes learned too"),
    "anil": (dict(adapt="head"), set(), "ANIL (Raghu et al. 2020): only the head adapts"),
    "reptile": (dict(first_order=True), {"sgd_from_init"}, "Reptile (Nichol et al. 2018): "
                "the meta-update theta - phi_T comes from the reptile estimator"),
}
OPTIONS = dict(inner_lr=Option(0.01, gt=0, doc="the inner SGD step size (Meta-SGD: its "
                                               "initial value)"),
               num_inner_steps=Option(1, ge=1, doc="T, inner steps while meta-training"))


def _builder(flags: dict):
  def build(config, family) -> GradientLearner:
    network = models.make(config.model, family.input_shape, family.output_dim)
    return GradientLearner(network.init_fn, network.apply_fn, family.loss,
                           config.learner.inner_lr, num_inner_steps=config.learner.num_inner_steps,
                           **flags)
  return build


for _name, (_flags, _extra, _doc) in _VARIANTS.items():
  LEARNERS.register(LearnerSpec(
      name=_name, doc=_doc, build=_builder(_flags), families=("episodes",), model="network",
      provides=frozenset({"stepwise", "reads_books", *_extra}),
      needs=frozenset({"reptile_update"}) if _name == "reptile" else frozenset(),
      options=OPTIONS))
