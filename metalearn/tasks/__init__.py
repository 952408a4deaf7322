"""Task families: few-shot episodes (sinusoids, image classification), network-training
problems for optimizers to learn on (classification, quadratics, language modelling), prompts
for in-context learners (function classes, projected classification) and textbooks.

Each family's module registers a :class:`TaskSpec` in :data:`TASKS` (the config's
``task.name``); :mod:`metalearn.tasks.base` declares the contracts.
"""

from metalearn.tasks.base import (TASKS, BookFamily, Episode, EpisodeFamily, PromptFamily,
                                  TaskFamily, TaskSpec, TrainingFamily, sample_batch,
                                  support_loss)
from metalearn.tasks.classification import FewShotClassification
from metalearn.tasks.in_context import ProjectedClassification, RegressionPrompts
from metalearn.tasks.language import LanguageModelTraining
from metalearn.tasks.noisy_quadratic import NoisyQuadratic
from metalearn.tasks.quadratic import QuadraticTraining
from metalearn.tasks.sinusoid import SinusoidFamily
from metalearn.tasks.textbook import SingleChapterFamily
from metalearn.tasks.textbook_omniglot import TextbookOmniglot
from metalearn.tasks.textbook_regression import TextbookRegression
from metalearn.tasks.training import ClassificationTraining, TrainingTask

__all__ = ["TASKS", "BookFamily", "ClassificationTraining", "Episode", "EpisodeFamily",
           "FewShotClassification", "LanguageModelTraining", "NoisyQuadratic", "PromptFamily",
           "ProjectedClassification", "QuadraticTraining", "RegressionPrompts",
           "SingleChapterFamily", "SinusoidFamily", "TaskFamily", "TaskSpec",
           "TextbookOmniglot", "TextbookRegression", "TrainingFamily", "TrainingTask",
           "sample_batch", "support_loss"]
