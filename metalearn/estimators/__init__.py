"""Meta-gradient estimators: pure ``init`` / ``estimate`` pairs. Each module registers its
estimators in :data:`ESTIMATORS` (the config's ``estimator.name``)."""

from metalearn.estimators.backprop import TruncatedState, full_backprop, truncated_backprop
from metalearn.estimators.base import ESTIMATORS, EstimatorSpec, MetaGradientEstimator
from metalearn.estimators.es import antithetic_es
from metalearn.estimators.pes import PESState, pes, truncated_es
from metalearn.estimators.reptile import reptile

__all__ = ["ESTIMATORS", "EstimatorSpec", "MetaGradientEstimator", "PESState",
           "TruncatedState", "antithetic_es", "full_backprop", "pes", "reptile",
           "truncated_backprop", "truncated_es"]
