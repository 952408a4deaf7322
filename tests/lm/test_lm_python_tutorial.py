"""The Python tutorial as a textbook: 16 chapters in order, prose without markup, examples kept
only when executing them prints what the tutorial shows, cloze questions whose answers are in
their chapters; the examples' grading by execution checked on made-up examples; and
the reproduction script at tiny: a LoRA reader's forgetting matrix over the chapters."""

import doctest
import json
import os
import subprocess

import numpy as np
import pytest

from metalearn.lm import python_tutorial as pt
from tests.conftest import ROOT


def _examples(text: str):
  return doctest.DocTestParser().get_examples(text)


def test_examples_are_graded_by_running_them_in_order():
  examples = _examples(">>> x = 3\n>>> x * 2\n6\n>>> x * 2\n7\n>>> 1 / 0\n"
                       "Traceback (most recent call last):\n  ...\nZeroDivisionError: "
                       "division by zero\n>>> print('a   b')\na b\n")
  # state carries (x), a wrong output fails, a shown exception passes, whitespace normalised
  assert pt.verify(examples) == [True, True, False, True, True]
  # waiting for input or looping forever fails that example alone, within its time
  stuck = _examples(">>> input('?')\n'y'\n>>> while True:\n...     pass\n>>> 2 + 2\n4\n")
  assert pt.verify(stuck, seconds=0.5) == [False, False, True]


def test_prose_and_cloze_drop_markup_and_blank_one_literal():
  source = ("*****\nTitle\n*****\n\nThe function :func:`len` returns ``n`` items of a "
            "sequence, see :ref:`the guide <tut-x>`.\n\n.. note::\n\n   hidden\n\nExample::\n\n"
            "   code()\n\nAfter the block comes ``more`` text in a long enough sentence.\n")
  title, text, paragraphs = pt.prose(source)
  assert title == "Title"
  assert "len returns n items of a sequence, see the guide." in text
  assert "hidden" not in text and "code()" not in text and "Example:" in text
  questions = pt.cloze_questions(paragraphs)
  assert [(q.question, q.answer) for q in questions] == [
      ("Fill in the blank: The function len returns ___ items of a sequence, see the guide. "
       "Answer:", "n"),
      ("Fill in the blank: After the block comes ___ text in a long enough sentence. Answer:",
       "more")]


def test_the_tutorial_reads_as_sixteen_chapters_with_graded_questions(python_tutorial_dir):
  chapters = pt.read()  # found through $METALEARN_PYTHON_TUTORIAL_DIR
  assert [c.name for c in chapters] == list(pt.CHAPTERS)
  assert chapters[2].title == "An Informal Introduction to Python"
  intro = chapters[2]
  asked = {q.question: q.answer for q in intro.examples}
  assert asked["What does this print?\n>>> 2 + 2\n"] == "4"
  assert sum(len(c.examples) for c in chapters) > 200
  assert sum(c.unverified for c in chapters) > 0  # e.g. input() and the busy-wait loop
  for c in chapters:
    # no examples (they are questions), no markup; ">>>" itself is named in the prose
    assert not any(p.startswith(">>> ") for p in c.text.split("\n\n"))
    assert "``" not in c.text and ":func:" not in c.text
    for q in c.cloze:
      assert q.question.count("___") == 1 and q.answer
  assert sum(len(c.cloze) for c in chapters) > 200
  assert pt.read(str(python_tutorial_dir))[5].cloze == chapters[5].cloze  # deterministic


def test_a_missing_tutorial_names_the_fix(tmp_path, monkeypatch):
  monkeypatch.delenv(pt.ENV, raising=False)
  with pytest.raises(FileNotFoundError, match="METALEARN_PYTHON_TUTORIAL_DIR"):
    pt.read(str(tmp_path))


def test_reproduction_script_tiny(tmp_path, tiny_base, python_tutorial_dir):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"), "BASE": str(tiny_base),
         "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu"}
  script = ROOT / "launch" / "reproduce" / "lm_python_tutorial.sh"
  result = subprocess.run(["bash", str(script), "tiny"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  reader = tmp_path / "runs" / "reader_tiny"
  evaluated = json.loads((reader / "eval.json").read_text())
  assert evaluated["evaluator"] == "textbook" and evaluated["num_chapters"] == 2
  assert evaluated["measure"] == "chapter_ends"  # the config's: every chapter at chapter ends
  assert evaluated["methods"]["meta"]["loss"]["curve_steps"] == [0, 2, 4]
  for method in ("meta", "random_init"):
    R = np.asarray(evaluated["methods"][method]["answer_accuracy"]["R"])
    assert R.shape == (2, 2) and ((0 <= R) & (R <= 1)).all()
  assert (reader / "export" / "peft").exists()
  out = tmp_path / "results" / "lm_python_tutorial_tiny"
  table = out.with_suffix(".md").read_text()
  assert "| chapter | answer_accuracy after it |" in table and "random_init, loss:" in table
  assert "| chapter | loss after it |" in table
  assert "tokens of the knowledge corpus" in table  # the base's run, described from its config
  assert out.with_suffix(".png").stat().st_size > 10_000
  # a finished run is not run again; a base that is not a model directory is refused
  again = subprocess.run(["bash", str(script), "tiny"], capture_output=True, text=True, env=env)
  assert again.returncode == 0 and "done:" not in again.stdout
  bad = subprocess.run(["bash", str(script), "tiny"], capture_output=True, text=True,
                       env={**env, "BASE": str(tmp_path)})
  assert bad.returncode == 2 and "holds no config.json" in bad.stderr
