"""Prototypical Networks (Snell et al. 2017): a metric learner with no inner optimisation.

An embedding network ``f_theta`` maps images to vectors; the prototype of class ``n`` is the
mean embedding of its support images, and a query ``x`` is classified by a softmax over
negative squared Euclidean distances,

.. math::  p(y = n \\mid x) \\propto \\exp(-\\lVert f_\\theta(x) - c_n \\rVert^2),
           \\qquad c_n = \\frac{1}{K} \\sum_{i: y_i = n} f_\\theta(x_i).

In the learner contract the inner state is the prototypes, built by ``init_state``; ``step``
leaves them unchanged, so ProtoNets have no inner steps (``num_inner_steps = 0``) and the
``final`` objective is the query cross-entropy.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from metalearn import models
from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.registry import ConfigError
from metalearn.tasks import Episode


@dataclasses.dataclass(frozen=True)
class ProtoNetLearner(Learner):
  """Attributes: ``init_fn(key) -> params`` and ``apply_fn(params, x) -> embeddings [M, D]``
  of the embedding network, ``loss_fn(logits, labels)``, and N (``num_ways``)."""
  init_fn: Callable
  apply_fn: Callable
  loss_fn: Callable
  num_ways: int
  num_inner_steps = 0

  def init(self, key):
    return {"params": self.init_fn(key)}

  def init_state(self, theta, episode: Episode):
    emb = self.apply_fn(theta["params"], episode.support_x)
    one_hot = jax.nn.one_hot(episode.support_y, self.num_ways, dtype=emb.dtype)
    return (one_hot.T @ emb) / jnp.sum(one_hot, axis=0)[:, None]

  def step(self, theta, state, episode: Episode):
    del theta, episode
    return state

  def predict(self, theta, state, x):
    emb = self.apply_fn(theta["params"], x)
    sq = (jnp.sum(emb**2, -1, keepdims=True) - 2 * emb @ state.T
          + jnp.sum(state**2, -1)[None])
    return -sq

  def query_loss(self, theta, state, episode: Episode):
    return self.loss_fn(self.predict(theta, state, episode.query_x), episode.query_y)


def _build(config, family) -> ProtoNetLearner:
  network = models.make(config.model, family.input_shape, None)
  return ProtoNetLearner(network.init_fn, network.apply_fn, family.loss, family.num_ways)


def _check(config) -> None:
  if config.eval.get("num_inner_steps"):
    raise ConfigError("learner.name='protonet' has no inner steps: set eval.num_inner_steps=0 "
                      "(and eval.report_steps=(0,))")


LEARNERS.register(LearnerSpec(
    name="protonet", doc="Prototypical Networks (Snell et al. 2017): classify by distance to "
    "class prototypes", build=_build, families=("episodes",), model="network",
    targets=("classification",), provides=frozenset(), horizon=lambda config: 0,
    eval_defaults=dict(num_inner_steps=0, report_steps=(0,)), check=_check))
