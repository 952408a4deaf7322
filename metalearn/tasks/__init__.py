"""Task families: few-shot episodes (sinusoids, image classification) and network-training
problems (classification, quadratics, language modelling) for optimizers to learn on, and
prompts for in-context learners (function classes, projected classification)."""

from metalearn.tasks.base import Episode, TaskFamily, sample_batch, support_loss
from metalearn.tasks.classification import FewShotClassification
from metalearn.tasks.in_context import ProjectedClassification, RegressionPrompts
from metalearn.tasks.language import LanguageModelTraining
from metalearn.tasks.noisy_quadratic import NoisyQuadratic
from metalearn.tasks.quadratic import QuadraticTraining
from metalearn.tasks.sinusoid import SinusoidFamily
from metalearn.tasks.textbook import SingleChapterFamily
from metalearn.tasks.textbook_omniglot import TextbookOmniglot
from metalearn.tasks.textbook_regression import TextbookRegression
from metalearn.tasks.training import ClassificationTraining, TrainingFamily, TrainingTask

__all__ = ["Episode", "TaskFamily", "ProjectedClassification", "RegressionPrompts", "FewShotClassification", "SinusoidFamily", "sample_batch",
           "support_loss",
           "ClassificationTraining", "LanguageModelTraining", "QuadraticTraining",
           "TrainingFamily", "TrainingTask", "SingleChapterFamily", "TextbookOmniglot",
           "TextbookRegression", "NoisyQuadratic"]
