"""A teacher over a book's chapters at LM scale (metalearn.reproductions.textbook_teacher): the
rounds' bookkeeping and scores checked by value, and the reproduction script at its tiny size."""

import csv
import json
import os
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment
from metalearn.reproductions import textbook_teacher as tt
from metalearn.tasks import TASKS
from tests.conftest import CONFIGS, ROOT


def test_summary_scores_the_book_the_probe_and_forgetting():
  out = {"final": {"answer_accuracy": np.array([0.5, 0.25, 0.0, 0.25]),
                   "known_accuracy": np.array([0.6, 0.8, 0.7, 0.7])},
         "last_visit": np.array([1.0, 0.25, np.nan, 0.75])}
  s = tt.summary(out)
  assert s["book_accuracy"] == pytest.approx(0.25) and s["chapters_read"] == 3
  assert s["forgetting"] == pytest.approx((0.5 + 0.0 + 0.5) / 3)
  assert s["known_accuracy"] == pytest.approx(0.7)


def test_rounds_read_the_chapter_the_teacher_picks_with_the_state_carried():
  module = config_lib.load_config_module(str(CONFIGS / "lm" / "meta_reading.py"))
  config = config_lib.validate(module.get_config("tiny,adam"))
  exp = experiment.build(config)
  chapters = TASKS.get(config.task.name).build(config.task, "test").view("episodes")
  theta = {"lr": jnp.log(jnp.float32(1e-2))}
  fixed = tt.make_teacher("fixed", chapters.num_chapters, rounds=4)  # 2 rounds per chapter
  out = tt.read_with_teacher(exp.learner, chapters, fixed, theta, jax.random.key(0), 4, 2)
  np.testing.assert_array_equal(out["tasks"], [0, 0, 1, 1])
  assert out["final"]["answer_accuracy"].shape == (2,)
  # the rounds' last-visit accuracy of chapter 1 is its accuracy at the end (read last)
  np.testing.assert_allclose(out["last_visit"][1], out["final"]["answer_accuracy"][1])
  # the same run by hand: 4 x 2 steps, chapter 0 then chapter 1, one state throughout
  _, k_episodes, _ = jax.random.split(jax.random.key(0), 3)
  episodes = [chapters.chapter_episode(c, k) for c, k in
              zip(range(2), jax.random.split(k_episodes, 2))]
  state = exp.learner.init_state(theta, episodes[0])
  for c in (0, 0, 1, 1):
    for _ in range(2):
      state = exp.learner.step(theta, state, episodes[c])
  loss = chapters.metrics(exp.learner.predict(theta, state, episodes[1].query_x),
                          episodes[1].query_y)["loss"]
  np.testing.assert_allclose(out["round_loss"][-1], loss, rtol=1e-5)
  with pytest.raises(ValueError, match="teachers"):
    tt.run(config, ["bogus"], 2, 1, 1, ROOT / "unused", "")


def test_reproduction_script_tiny(tmp_path, tiny_base):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"), "TEACHERS": "fixed,tscl",
         "BASE": str(tiny_base),
         "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" /
                                       "lm_textbook_teacher.sh"), "tiny"],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / "lm_textbook_teacher_tiny"
  with open(out.with_suffix(".csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["teacher"] for r in rows] == ["fixed", "tscl"]
  runs = json.loads(out.with_suffix(".json").read_text())
  assert len(runs) == 4 and all(len(r["tasks"]) == 6 for r in runs)
  assert [r["tasks"] for r in runs if r["teacher"] == "fixed"][0] == [0, 0, 0, 1, 1, 1]
  table = out.with_suffix(".md").read_text()
  assert "| fixed | 2 |" in table and "mentor from an earlier chapter" in table
  assert all(r["seconds"] > 0 for r in runs)
  assert out.with_suffix(".png").stat().st_size > 10_000
