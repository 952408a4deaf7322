"""Meta-gradient estimators: pure ``init`` / ``estimate`` pairs."""

from metalearn.estimators.backprop import TruncatedState, full_backprop, truncated_backprop
from metalearn.estimators.base import MetaGradientEstimator
from metalearn.estimators.reptile import reptile

ESTIMATORS = ("backprop", "truncated_backprop", "reptile")

__all__ = ["ESTIMATORS", "MetaGradientEstimator", "TruncatedState", "full_backprop",
           "truncated_backprop", "reptile"]
