"""task.name='python_tutorial': the tutorial's chapters as a book read in order (rows of its
prose, its questions); the LoRA reader's forgetting matrix over them end to end is
tests/lm/test_lm_python_tutorial.py's (through its reproduction script)."""

import jax
import ml_collections
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn.lm import python_tutorial as pt
from metalearn.lm import tokenizer as tok_lib
from metalearn.registry import ConfigError
from metalearn.tasks import python_tutorial as task
from metalearn.tasks.base import TASKS


def _task(**overrides):
  t = {k: o.default for k, o in TASKS.get("python_tutorial").options.items()}
  t.update(chapters=("introduction", "errors"), max_len=32, num_query=4, steps_per_chapter=3,
           rows_per_step=2)
  t.update(overrides)
  return ml_collections.ConfigDict(t)


def test_chunks_cover_the_text_once():
  rows = task.chunks(list(range(10)), 4)
  assert rows == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9]]


def test_the_book_is_its_chapters_in_order(python_tutorial_dir):
  book = task.build_family(_task(), "test")
  chapters = {c.name: c for c in pt.read(str(python_tutorial_dir))}
  tok = tok_lib.byte_level()
  episode = book.sample(jax.random.key(0))
  np.testing.assert_array_equal(episode.info["chapters"], [0, 1])  # the tutorial's order
  assert episode.support_x.shape == (6, 2, 32) and episode.query_x.shape[:2] == (2, 4)
  first = tok.decode([int(i) for i in np.asarray(book.chapters.support_x[0, 0])])
  assert chapters["introduction"].text.startswith(first)
  # the shorter chapter's rows cycle: its first row again after its last
  rows = [len(task.chunks(tok.encode(chapters[n].text), 32)) for n in ("introduction", "errors")]
  assert book.chapters.support_x.shape[1] == max(rows)
  short = int(np.argmin(rows))
  np.testing.assert_array_equal(book.chapters.support_x[short, rows[short]],
                                book.chapters.support_x[short, 0])
  answers = {q.answer for q in chapters["errors"].qa}
  for row in np.asarray(episode.query_y[1]):
    assert tok.decode([int(i) for i in row if i >= 0])[1:] in answers
  cloze_only = task.build_family(_task(questions=("cloze",)), "test")
  assert cloze_only.chapters.query_x.shape[1] == max(len(chapters[n].cloze)
                                                     for n in ("introduction", "errors"))
  with pytest.raises(ConfigError, match="no questions of the kinds"):
    task.build_family(_task(chapters=("appetite", "errors")), "test")


def test_bad_options_are_refused():
  c = ml_collections.ConfigDict(dict(task=dict(name="python_tutorial", chapters=("intro",)),
                                     model=dict(name="decoder_lm"),
                                     learner=dict(name="lora_finetune")))
  with pytest.raises(ConfigError, match="task.chapters"):
    config_lib.validate(c)
