"""task.name='biography_book': chapters of the biography textbook as episodes; each episode's
questions are about its chapter's people, splits hold disjoint chapters, and the LoRA
fine-tuning learner takes it by name."""

import jax
import ml_collections
import numpy as np
import pytest

from metalearn import experiment
from metalearn.lm import tokenizer as tok_lib
from metalearn.registry import ConfigError
from metalearn.tasks import biography_book as task
from metalearn.tasks.base import TASKS
from tests.learners.test_lora_finetune import _config


def _task(**overrides):
  t = {k: o.default for k, o in TASKS.get("biography_book").options.items()}
  t.update(num_chapters=4, eval_chapters=2, people_per_chapter=3, multiplicity=2,
           permute=True, fullname=True, num_query=5)
  t.update(overrides)
  return ml_collections.ConfigDict(t)


def test_an_episode_is_a_chapter_and_its_questions():
  t = _task()
  family = task.build_family(t, "train")
  chapters = task.chapters_of(t)["train"]
  assert family.support_x.shape[:2] == (4, 6) and family.query_x.shape[:2] == (4, 18)
  tok = tok_lib.byte_level()
  episode = family.sample(jax.random.key(0))
  c = int(episode.info["person"])  # BiographyFamily's episode index: here a chapter
  names = [p.name for p in chapters[c].people]
  assert episode.query_x.shape[0] == 5
  for row in np.asarray(episode.query_x):
    text = tok.decode([int(i) for i in row if i >= 0], skip_special=True)
    assert any(n in text for n in names), text
  for row in np.asarray(episode.support_x):  # the chapter's own biographies
    text = tok.decode([int(i) for i in row if i >= 0], skip_special=True)
    assert any(n in text for n in names)


def test_splits_hold_disjoint_chapters_and_prerequisites_ask_about_mentors():
  split = task.chapters_of(_task(prerequisites=True))
  names = {s: {p.name for ch in chs for p in ch.people} for s, chs in split.items()}
  assert not names["train"] & names["validation"] and not names["validation"] & names["test"]
  assert all(p.mentor is not None for chs in split.values() for ch in chs for p in ch.people)
  family = task.build_family(_task(prerequisites=True), "test")
  assert family.query_x.shape[:2] == (2, 3 * 8)  # six attributes and two relations each


def test_the_lora_learner_takes_it_by_name_with_clear_errors():
  config = _config(("task", dict(name="biography_book", num_chapters=4, eval_chapters=2,
                                 people_per_chapter=2, num_query=4)))
  exp = experiment.build(config)
  assert exp.family.support_x.shape[:2] == (4, 2) and exp.family.num_query == 4
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="a chapter has 12 questions"):
    config_lib.validate(_config(("task", dict(name="biography_book", people_per_chapter=2,
                                              num_query=13))))
  with pytest.raises(ConfigError, match="splits"):
    task.build_family(_task(), "dev")
