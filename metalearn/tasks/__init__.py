"""Task families: few-shot episodes (sinusoids, image classification) and network-training
problems (classification, quadratics, language modelling) for optimizers to learn on."""

from metalearn.tasks.base import Episode, TaskFamily, sample_batch
from metalearn.tasks.classification import FewShotClassification
from metalearn.tasks.language import LanguageModelTraining
from metalearn.tasks.quadratic import QuadraticTraining
from metalearn.tasks.sinusoid import SinusoidFamily
from metalearn.tasks.training import ClassificationTraining, TrainingFamily, TrainingTask

__all__ = ["Episode", "TaskFamily", "FewShotClassification", "SinusoidFamily", "sample_batch",
           "ClassificationTraining", "LanguageModelTraining", "QuadraticTraining",
           "TrainingFamily", "TrainingTask"]
