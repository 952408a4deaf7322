"""Meta-objectives: a learning curve ``L_0, ..., L_T`` (query losses) to a scalar to minimise.

Success objectives (:mod:`metalearn.objectives.success`: ``final``, ``mean``, ``late_mean``,
``mean_all``) score where the learner ends up; *progress* objectives
(:mod:`metalearn.objectives.progress`: ``progress``, ``log_progress``,
``discounted_progress``) score how much and how fast it improves, the thesis of this library.
:mod:`metalearn.objectives.base` has the contract and the registry (the config's
``objective.name``); a new objective is a new module here.

Every objective maps a curve ``[..., T + 1]`` to ``[...]``; average over tasks outside.
"""

from metalearn.objectives.base import (OBJECTIVES, Objective, ObjectiveSpec, as_objective,
                                       get_objective, score)
from metalearn.objectives.progress import (discounted_progress, log_progress, progress,
                                           relative_improvement)
from metalearn.objectives.success import final_loss, late_mean_loss, mean_all_loss, mean_loss

__all__ = ["OBJECTIVES", "Objective", "ObjectiveSpec", "as_objective", "discounted_progress",
           "final_loss", "get_objective", "late_mean_loss", "log_progress", "mean_all_loss",
           "mean_loss", "progress", "relative_improvement", "score"]
