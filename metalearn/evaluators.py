"""The evaluator of each kind of learner, imported when a binary starts (not mid-run).

* few-shot learners (MAML family, ProtoNets): :mod:`metalearn.evaluation`;
* learned optimizers: :mod:`metalearn.lopt_evaluation`;
* in-context learners: :mod:`metalearn.icl_evaluation`;
* textbook tasks (any learner that reads them): :mod:`metalearn.textbook_evaluation`.
"""

import ml_collections

import jax

from metalearn import evaluation, icl_evaluation, lopt_evaluation, textbook_evaluation
from metalearn.learners import LOPTS


def evaluate_and_report(config: ml_collections.ConfigDict, workdir) -> dict:
  """Evaluates the newest checkpoint in ``workdir`` with the learner's evaluator; process 0
  prints the report. Returns the ``eval.json`` content."""
  if config.learner.name in LOPTS:
    module = lopt_evaluation
  elif config.learner.name == "in_context":
    module = icl_evaluation
  elif config.task.name in ("textbook_regression", "textbook_omniglot"):
    module = textbook_evaluation
  else:
    return evaluation.evaluate_and_report(config, workdir)
  results = module.evaluate(config, workdir)
  if jax.process_index() == 0:
    module.print_report(results, workdir)
  return results
