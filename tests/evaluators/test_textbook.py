"""Textbook evaluation: transfer and forgetting formulas by hand, the R matrix from one unroll,
config errors, and a tiny end-to-end meta_train.py run over books."""

import json
import re

import jax
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment
from metalearn.evaluators import textbook as te
from metalearn.tasks import sample_batch
from tests.conftest import ROOT, meta_train_tiny

# R[s, c]: the loss on chapter c after reading through chapter s (3 chapters).
R = np.array([[1.0, 5.0, 6.0],
              [2.0, 0.5, 4.0],
              [3.0, 1.0, 0.2]])
ALONE = np.array([1.0, 0.8, 0.5])  # each chapter's loss after reading it alone


def test_forward_transfer_and_forgetting_formulas_on_a_hand_made_matrix():
  np.testing.assert_allclose(te.forward_transfer(R, ALONE), [0.0, 0.3, 0.3])  # S[c] - R[c,c]
  np.testing.assert_allclose(te.forgetting(R), [2.0, 0.5, 0.0])  # R[C-1, c] - R[c, c]
  accuracy = 1 - R / 10
  np.testing.assert_allclose(te.forward_transfer(accuracy, 1 - ALONE / 10, True),
                             [0.0, 0.03, 0.03])
  np.testing.assert_allclose(te.forgetting(accuracy, True), [0.2, 0.05, 0.0])
  batch = np.stack([R, 2 * R])  # leading book axis
  np.testing.assert_allclose(te.forgetting(batch)[1], [4.0, 1.0, 0.0])


def test_chapter_ends_book_curve_and_within_chapter_progress():
  E = 2
  # per-chapter losses after t = 0..6 exercises of a 3-chapter book (rows: t)
  curve = np.array([[4, 8, 8], [2, 8, 8], [1, 6, 8], [2, 4, 8], [2, 2, 6], [3, 2, 4],
                    [3, 3, 1]], float)
  np.testing.assert_array_equal(te.at_chapter_ends(curve, E), curve[[2, 4, 6]])
  expected = [4, 2, 1, 3, 2, 3, 7 / 3]  # mean over chapters read so far
  np.testing.assert_allclose(te.book_curve(curve, E), expected)
  # chapter 0: 4 -> 2 -> 1: ((4-2)/4 + (4-1)/4) / 2; chapter 1: 6 -> 4 -> 2; chapter 2: 6 -> 4 -> 1
  np.testing.assert_allclose(te.within_chapter_progress(curve, E),
                             [0.625, (2 / 6 + 4 / 6) / 2, (2 / 6 + 5 / 6) / 2])
  np.testing.assert_allclose(te.progress_alone(np.array([[4.0, 2, 1]])), [0.625])


def _config(arg="regression,tiny"):
  module = config_lib.load_config_module(str(ROOT / "experiments/configs/textbook.py"))
  return module.get_config(arg)


@pytest.fixture(scope="module")
def books():
  """``(config, book, reader, theta, episodes)`` of ``textbook.py:regression,tiny``."""
  config = config_lib.validate(_config())
  book = te.make_book(config, "test")
  reader = experiment.build(config).learner.reader(book)
  episodes = jax.jit(sample_batch, static_argnums=2)(book, jax.random.key(1),
                                                     config.eval.num_books)
  return config, book, reader, reader.init(jax.random.key(0)), episodes


@pytest.fixture(scope="module")
def read(books):
  """Those books read as its evaluation reads them (the same compiled programs, which the
  end-to-end run below then finds in the session's cache)."""
  config, book, reader, theta, episodes = books
  return book, te.read_books(reader, book, theta, episodes, config.eval.task_batch_size)


def test_read_books_gives_r_from_one_unroll_and_chapters_alone_from_the_same_start(read):
  book, arrays = read
  loss_book, loss_alone = np.asarray(arrays["book"]["loss"]), np.asarray(arrays["alone"]["mse"])
  assert loss_book.shape == (8, 13, 3) and loss_alone.shape == (8, 3, 5)
  # chapter 0 alone and in the book: the same start and exercises, the same curve
  np.testing.assert_allclose(loss_alone[:, 0], loss_book[:, :5, 0], rtol=1e-6)
  # every chapter alone starts from the initial weights: the book's loss before reading
  np.testing.assert_allclose(loss_alone[:, :, 0], loss_book[:, 0, :], rtol=1e-6)
  results = te.summarize(arrays["book"], arrays["alone"], book.exercises_per_chapter)
  m = results["mse"]
  np.testing.assert_allclose(m["R"], te.at_chapter_ends(loss_book, 4).mean(0), rtol=1e-6)
  assert m["forward_transfer"][0] == pytest.approx(0.0, abs=1e-6)
  assert m["forgetting"][2] == pytest.approx(0.0, abs=1e-6)
  np.testing.assert_allclose(m["backward_transfer"], -np.asarray(m["forgetting"]))
  assert len(results["loss"]["progress"]) == 3 and "progress" not in m
  assert m["summary"]["final"] == pytest.approx(np.mean(m["R"][-1]), rel=1e-5)


def test_reading_at_chapter_ends_measures_what_every_step_does_where_it_measures(books, read):
  config, book, reader, theta, episodes = books
  _, full = read
  ends = te.read_books_at_chapter_ends(reader, book, theta, episodes, 4)
  E, C = book.exercises_per_chapter, book.num_chapters
  assert np.asarray(ends["reading"]["loss"]).shape == (8, C, E + 1)
  assert np.asarray(ends["ends"]["loss"]).shape == (8, C, C)
  sparse = {m: te.book_from_chapter_ends(*(np.asarray(ends[k][m]) for k in
                                           ("start", "ends", "reading")))
            for m in ends["ends"]}
  dense = np.asarray(full["book"]["loss"])
  measured = ~np.isnan(sparse["loss"][0])
  # before the book and at chapter ends every chapter; between them only the one being read
  assert measured[0].all() and measured[E::E].all()
  np.testing.assert_array_equal(measured[1:E].sum(-1), 1)
  assert measured.sum() == (C + 1) * C + C * (E - 1)
  np.testing.assert_allclose(sparse["loss"][:, measured], dense[:, measured], rtol=1e-5)
  np.testing.assert_allclose(np.asarray(ends["alone"]["loss"]),
                             np.asarray(full["alone"]["loss"]), rtol=1e-5)
  every = te.summarize(full["book"], full["alone"], E)["mse"]
  at_ends = te.summarize(sparse, ends["alone"], E, chapter_ends=True)
  for key in ("R", "forgetting", "forward_transfer", "alone"):
    np.testing.assert_allclose(at_ends["mse"][key], every[key], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(at_ends["loss"]["progress"],
                             te.summarize(full["book"], full["alone"], E)["loss"]["progress"],
                             rtol=1e-5)
  assert at_ends["mse"]["curve_steps"] == [0, E, 2 * E, 3 * E]
  np.testing.assert_allclose(at_ends["mse"]["curve"], np.asarray(every["curve"])[::E],
                             rtol=1e-5)
  assert at_ends["mse"]["summary"]["area"] == pytest.approx(np.mean(every["curve"][E::E]),
                                                            rel=1e-5)
  assert at_ends["mse"]["chapter_curves"][1][1] is None  # chapter 1 while chapter 0 is read


def _set(**changes):
  def change(c):
    for key, value in changes.items():
      group, _, name = key.rpartition(".")
      (c[group] if group else c)[name] = value
  return change


def _sinusoid_task(c):
  c.task, c.eval = dict(name="sinusoid"), dict()


def _protonet(c):
  c.learner = dict(name="protonet")


@pytest.mark.parametrize("change,message", [
    (_sinusoid_task, "learner.name='sequential', task.name='sinusoid' do not go together: the "
     "learner learns on 'book' families, the task is taken as 'episodes'; tasks for learner "
     "'sequential': "
     "['textbook_omniglot', 'textbook_regression']"),
    (_protonet, "the learner handles 'classification' targets, the task's are 'regression'; "
     "tasks for learner 'protonet': ['few_shot', 'textbook_omniglot'], learners for task "
     "'textbook_regression': ['anil', 'fomaml', 'maml', 'metasgd', 'oml', 'reptile', "
     "'sequential']"),
    (_set(**{"model.norm": "batch"}), "set model.norm to 'layer' or 'none'"),
    (_set(**{"estimator.name": "truncated_backprop", "estimator.truncation_length": 5}),
     "the inner steps of learner 'sequential' on this task (12) must be a multiple of "
     "estimator.truncation_length (5): set estimator.truncation_length to one of "
     "[1, 2, 3, 4, 6, 12]"),
    (_set(**{"estimator.name": "reptile"}), "estimator.name='reptile', learner.name='sequential' "
     "do not go together: the estimator needs a learner that is 'sgd_from_init'"),
    (_set(**{"task.freq_range": (0.0, 1.0)}), "'task.freq_range' = (0.0, 1.0) is not allowed"),
    (_set(**{"eval.num_books": 1}), "'eval.num_books' = 1 is not allowed"),
])
def test_config_errors_name_the_fix(change, message):
  config = _config()
  change(config)
  with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
    config_lib.validate(config)


def test_omniglot_config_errors_name_the_fix():
  config = _config("omniglot,tiny")
  config.task.batch_size = 4
  with pytest.raises(config_lib.ConfigError, match=re.escape(
      "task.batch_size (4) must divide task.num_ways * task.num_support (3 * 2)")):
    config_lib.validate(config)
  config = _config("omniglot,tiny")
  config.eval.split = "validation"
  with pytest.raises(config_lib.ConfigError, match="set eval.split to one of them"):
    config_lib.validate(config)


def test_textbook_configs_validate():
  module = config_lib.load_config_module(str(ROOT / "experiments/configs/textbook.py"))
  for arg in ("regression,tiny", "regression,small,oml,metasgd_lr", "regression,full,maml",
              "omniglot,tiny", "omniglot,small,anil", "omniglot,full", "regression,reptile"):
    config_lib.validate(module.get_config(arg))
  with pytest.raises(ValueError, match="unknown config argument 'huge'"):
    module.get_config("regression,huge")


def test_meta_train_reads_books_and_writes_per_chapter_metrics(tmp_path):
  result = meta_train_tiny("textbook.py", "regression,tiny", tmp_path)
  assert "| chapter | mse after it | mse at end | mse alone | progress |" in result.stdout
  evaluated = json.loads((tmp_path / "eval.json").read_text())
  assert evaluated["num_chapters"] == 3 and evaluated["exercises_per_chapter"] == 4
  assert set(evaluated["methods"]) == {"meta", "random_init"}
  m = evaluated["methods"]["meta"]["mse"]
  assert np.asarray(m["R"]).shape == (3, 3) and len(m["curve"]) == 13
  for key in ("forward_transfer", "forgetting", "backward_transfer", "alone"):
    assert len(m[key]) == 3 and np.all(np.isfinite(m[key]))
  assert len(evaluated["methods"]["meta"]["loss"]["progress"]) == 3
  assert set(m["summary"]) == {"area", "final", "forward_transfer", "forgetting"}
  for png in ("textbook_R.png", "textbook_curves.png"):
    assert (tmp_path / png).stat().st_size > 10_000


def test_omniglot_tiny_reads_books_of_alphabets(tmp_path, omniglot_dir):
  result = meta_train_tiny("textbook.py", "omniglot,tiny", tmp_path)
  assert "| chapter | accuracy after it | accuracy at end | accuracy alone |" in result.stdout
  evaluated = json.loads((tmp_path / "eval.json").read_text())
  assert evaluated["num_chapters"] == 2 and evaluated["exercises_per_chapter"] == 3
  assert set(evaluated["methods"]) == {"meta", "random_init"}
  accuracy = evaluated["methods"]["meta"]["accuracy"]
  assert np.asarray(accuracy["R"]).shape == (2, 2) and len(accuracy["curve"]) == 7
  assert all(0 <= a <= 1 for a in accuracy["curve"])
