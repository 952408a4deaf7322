"""Meta-gradient estimators: pure ``init`` / ``estimate`` pairs."""

from metalearn.estimators.backprop import TruncatedState, full_backprop, truncated_backprop
from metalearn.estimators.base import MetaGradientEstimator
from metalearn.estimators.es import antithetic_es
from metalearn.estimators.pes import PESState, pes, truncated_es
from metalearn.estimators.reptile import reptile

ESTIMATORS = ("backprop", "truncated_backprop", "reptile", "es", "truncated_es", "pes")

__all__ = ["ESTIMATORS", "MetaGradientEstimator", "PESState", "TruncatedState", "antithetic_es",
           "full_backprop", "pes", "reptile", "truncated_backprop", "truncated_es"]
