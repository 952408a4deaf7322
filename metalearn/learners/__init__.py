"""Learners: the contract, the gradient-based family, Prototypical Networks, and optimizers
(hand-designed and learned) training networks of training task families."""

from typing import Callable

from metalearn.learners.base import Learner
from metalearn.learners.gradient import GradientLearner
from metalearn.learners.protonet import ProtoNetLearner
from metalearn.learners.optimizer import (OptaxRule, OptimizerLearner, OptimizerState,
                                          StepSizeRule, UpdateRule, adam_rule,
                                          sgd_momentum_rule)
from metalearn.learners.export import LOPTS, as_optax, make_rule
from metalearn.learners.in_context import LAYOUTS, InContextLearner
from metalearn.learners.sequential import (SEQUENTIAL_LEARNERS, SequentialLearner,
                                          SequentialState)
from metalearn.learners.schedule import ScheduleLearner, ScheduleState

# name -> GradientLearner options. Reptile's meta-update comes from its estimator.
GRADIENT_LEARNERS = {
    "maml": dict(),
    "fomaml": dict(first_order=True),
    "metasgd": dict(learn_inner_lr=True),
    "anil": dict(adapt="head"),
    "reptile": dict(first_order=True),
}

# Every learner a config may name: the gradient-based family, Prototypical Networks, the
# learned optimizers and in-context learners.
LEARNERS = (*GRADIENT_LEARNERS, "protonet", *LOPTS, "in_context", *SEQUENTIAL_LEARNERS)


def make_gradient_learner(name: str, init_fn: Callable, apply_fn: Callable, loss_fn: Callable,
                          inner_lr: float) -> GradientLearner:
  """Builds the named learner (one of :data:`GRADIENT_LEARNERS`)."""
  if name not in GRADIENT_LEARNERS:
    raise ValueError(f"unknown learner {name!r}; choose one of {sorted(GRADIENT_LEARNERS)}")
  return GradientLearner(init_fn, apply_fn, loss_fn, inner_lr, **GRADIENT_LEARNERS[name])


__all__ = ["Learner", "GradientLearner", "InContextLearner", "LAYOUTS", "ProtoNetLearner", "GRADIENT_LEARNERS", "LEARNERS",
           "LOPTS", "OptaxRule", "OptimizerLearner", "OptimizerState", "StepSizeRule", "UpdateRule",
           "adam_rule", "as_optax", "sgd_momentum_rule",
           "make_gradient_learner", "make_rule", "SEQUENTIAL_LEARNERS", "SequentialLearner",
           "SequentialState", "ScheduleLearner", "ScheduleState"]
