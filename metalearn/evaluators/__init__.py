"""Evaluators: one outline (:mod:`metalearn.evaluators.base`) and one module per kind.

``few_shot`` (episodes), ``optimizer`` (training tasks, learned optimizers), ``in_context``
(prompts) and ``textbook`` (books read in order). A config's ``eval.name`` picks one; a task
family names its default.
"""

from metalearn.evaluators.base import (COMMON_OPTIONS, EVALUATORS, Context, EvaluatorSpec,
                                       eval_key, evaluate, evaluate_and_report, hardware,
                                       load_theta, mean_ci95, register)

__all__ = ["COMMON_OPTIONS", "EVALUATORS", "Context", "EvaluatorSpec", "eval_key", "evaluate",
           "evaluate_and_report", "hardware", "load_theta", "mean_ci95", "register"]
