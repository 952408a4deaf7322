import json

import pytest

from metalearn import evaluators, train
from metalearn.evaluators import base


def _refuse(*args, **kwargs):
  raise AssertionError("evaluated again")


def test_a_finished_evaluation_is_reported_not_redone(tmp_path, tiny_config, monkeypatch):
  tiny_config.eval.num_plot_tasks = 0
  train.train(tiny_config, str(tmp_path))
  first = evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=False)
  assert first["checkpoint_step"] == tiny_config.num_steps
  real_evaluate = base.evaluate
  monkeypatch.setattr(base, "evaluate", _refuse)
  again = evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=False)
  assert again["methods"] == json.loads(json.dumps(first["methods"]))
  tiny_config.log_every = 20  # a key a resume may change: still the same evaluation
  evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=False)
  with pytest.raises(AssertionError, match="evaluated again"):
    evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=True)
  monkeypatch.setattr(base, "evaluate", real_evaluate)

  # New evaluation settings, a newer checkpoint, or a damaged eval.json: evaluate again.
  tiny_config.eval.num_tasks = 12
  assert base.previous_results(tiny_config, tmp_path) is None
  assert evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=False)[
      "num_tasks"] == 12
  assert base.previous_results(tiny_config, tmp_path) is not None
  tiny_config.num_steps = 60
  train.train(tiny_config, str(tmp_path))
  assert base.previous_results(tiny_config, tmp_path) is None
  evaluators.evaluate_and_report(tiny_config, str(tmp_path), force=False)
  (tmp_path / "eval.json").write_text("{not json")
  assert base.previous_results(tiny_config, tmp_path) is None
