"""Task families and the episode type they produce."""

from metalearn.tasks.base import Episode, TaskFamily, sample_batch
from metalearn.tasks.classification import FewShotClassification
from metalearn.tasks.sinusoid import SinusoidFamily

__all__ = ["Episode", "TaskFamily", "FewShotClassification", "SinusoidFamily", "sample_batch"]
