"""Learners: the contract and its registry, the gradient-based family, Prototypical Networks,
optimizers (hand-designed and learned) training networks of training task families,
in-context learners and textbook readers.

Each learner's module registers a :class:`LearnerSpec` in :data:`LEARNERS` (the config's
``learner.name``); :mod:`metalearn.learners.base` declares the contract.
"""

from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.learners.gradient import GradientLearner
from metalearn.learners.protonet import ProtoNetLearner
from metalearn.learners.optimizer import (OptaxRule, OptimizerLearner, OptimizerLearnerSpec,
                                          OptimizerState, StepSizeRule, UpdateRule, adam_rule,
                                          register_learned_optimizer, sgd_momentum_rule)
from metalearn.learners.export import as_optax, learned_optimizers, make_rule
from metalearn.learners.in_context import LAYOUTS, InContextLearner
from metalearn.learners.sequential import SequentialLearner, SequentialState
from metalearn.learners.schedule import ScheduleLearner, ScheduleState

__all__ = ["GradientLearner", "InContextLearner", "LAYOUTS", "LEARNERS", "Learner",
           "LearnerSpec", "OptaxRule", "OptimizerLearner", "OptimizerLearnerSpec",
           "OptimizerState", "ProtoNetLearner", "ScheduleLearner", "ScheduleState",
           "SequentialLearner", "SequentialState", "StepSizeRule", "UpdateRule", "adam_rule",
           "as_optax", "learned_optimizers", "make_rule", "register_learned_optimizer",
           "sgd_momentum_rule"]
