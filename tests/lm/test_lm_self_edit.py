"""Self-written study notes (metalearn.reproductions.self_edit): ReST-EM's selection, the
writer's training examples, the study rows and the bar checked by value, and the
reproduction script at its tiny size, end to end and resumed."""

import csv
import json
import os
import subprocess

import numpy as np
import pytest

from metalearn.lm import tokenizer as tok_lib
from metalearn.reproductions import self_edit
from tests.conftest import ROOT


def test_rest_em_keeps_each_persons_best_note_if_it_taught_something():
  rewards = np.array([[0.1, -0.2, 0.05], [-0.1, -0.3, -0.01], [0.0, 0.5, 0.2]])
  assert self_edit.select(rewards) == [(0, 0), (2, 1)]
  before = {"loss": np.array([[2.0, 2.0]])}
  after = {"loss": np.array([[1.5, 2.5]])}
  np.testing.assert_allclose(self_edit.reward(before, after), [[0.5, -0.5]])


def test_the_writer_learns_the_note_after_its_prompt_only():
  tok = tok_lib.byte_level()
  prompt = self_edit.prompt_ids(tok, "Ada Lovelace was born in Lima.", "Ada Lovelace", limit=20)
  # the biography cut so that the name still ends the prompt
  assert prompt == tok.encode("Ada Lovelace was bo", bos=True)[:20 - 13] + tok.encode(
      " Ada Lovelace") and len(prompt) == 20
  note = tok.encode(" studied Music.", eos=True)
  datum = self_edit.sft_datum(prompt, note)
  ids = prompt + note
  assert datum.model_input.to_ints() == ids[:-1]
  assert datum.loss_fn_inputs["target_tokens"].tolist() == ids[1:]
  weights = datum.loss_fn_inputs["weights"].tolist()
  assert weights == [0.0] * (len(prompt) - 1) + [1.0] * len(note)  # every note token, no more
  assert self_edit.note_row(tok, "Ada Lovelace", (note,)) == tok.encode("Ada Lovelace",
                                                                        bos=True) + note


def test_a_notes_sentences_are_read_each_opened_by_the_name():
  tok = tok_lib.byte_level()
  first, second = tok.encode(" studied Music.", eos=True), tok.encode(" was born in Lima.")
  row = self_edit.note_row(tok, "Ada", (first, second))
  # the first sentence's end of text dropped: the row ends only where the note does
  assert row == tok.encode("Ada studied Music. Ada was born in Lima.", bos=True)
  assert self_edit.note_row(tok, "Ada", (second, first))[-1] == tok.eos_id



def test_the_warm_start_restates_each_sentence_after_the_name():
  tok = tok_lib.byte_level()
  bio = "Ada Lo was born in Lima. Ada Lo's employer was NASA. Ada Lo studied Music."
  assert self_edit.restatements(tok, bio, "Ada Lo") == [
      tok.encode(" was born in Lima.", eos=True), tok.encode("'s employer was NASA.", eos=True),
      tok.encode(" studied Music.", eos=True)]
  # what the reader then studies is the biography itself
  assert self_edit.note_row(tok, "Ada Lo", self_edit.restatements(tok, bio, "Ada Lo")) == (
      tok.encode(bio, bos=True, eos=True))
  with pytest.raises(ValueError, match="warm_start=-1: at least 0"):
    self_edit.Options(warm_start=-1)

class _Sampler:
  """Returns sequences 0, 1, 2, ... (each [k, eos] or with trailing tokens after eos)."""

  def __init__(self, eos):
    self.eos, self.calls = eos, []

  def sample(self, prompt, num_samples, params):
    self.calls.append((prompt.to_ints(), num_samples, params.seed, params.max_tokens))
    seqs = [type("S", (), {"tokens": [k, self.eos, 7]})() for k in range(num_samples)]
    return type("F", (), {"result": lambda _: type("R", (), {"sequences": seqs})()})()


def test_notes_group_one_calls_sentences_in_order_and_stop_at_end_of_text():
  tok = tok_lib.byte_level()
  sampler = _Sampler(tok.eos_id)
  opts = self_edit.Options(samples=2, sentences=3, max_tokens=5)
  notes = self_edit.sample_notes(sampler, tok, [[1, 2], [3]], opts, seed=4)
  e = tok.eos_id
  assert notes == [[([0, e], [1, e], [2, e]), ([3, e], [4, e], [5, e])]] * 2
  assert [(c[1], c[3]) for c in sampler.calls] == [(6, 5), (6, 5)]
  assert sampler.calls[0][2] != sampler.calls[1][2]  # each prompt its own seed


def test_study_rows_read_a_text_after_bos_or_token_ids_as_given():
  tok = tok_lib.byte_level()
  sx, sy = self_edit.study_rows(tok, ["Ada.", tok.encode("Bo.", bos=True)], length=6)
  assert sx.shape == sy.shape == (2, 1, 6)
  assert sx[0, 0, 0] == sx[1, 0, 0] == tok.bos_id
  assert sy[0, 0].tolist()[:4] == tok.encode("Ada.") and sy[0, 0, 4] == -1
  assert sy[1, 0].tolist()[:3] == tok.encode("Bo.")


def _run(rewards, accuracy=0.1):
  inputs = {name: {"accuracy_before": 0.0, "accuracy_after": accuracy, "loss_drop": 0.1}
            for name in self_edit.INPUTS}
  return {"iterations": [{"reward": r} for r in rewards], "inputs": inputs}


def test_the_bar_needs_the_last_iterations_interval_above_the_firsts():
  rising = self_edit.summarise([_run([0.0, 0.5]), _run([0.1, 0.6]), _run([0.05, 0.55])])
  assert rising["rose"] and rising["reward"] == pytest.approx([0.05, 0.55])
  noisy = self_edit.summarise([_run([0.0, 0.9]), _run([0.4, 0.0]), _run([0.1, 0.3])])
  assert not noisy["rose"]  # higher on average, intervals overlapping
  assert rising["inputs"]["qa"]["accuracy_after"] == pytest.approx(0.1)


def test_bad_options_are_refused():
  with pytest.raises(ValueError, match="samples=0: at least 1"):
    self_edit.Options(samples=0)


def test_reproduction_script_tiny(tmp_path, tiny_base):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"), "BASE": str(tiny_base),
         "RESULTS_DIR": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu", "SEEDS": "1"}
  script = ["bash", str(ROOT / "launch" / "reproduce" / "lm_self_edit.sh"), "tiny"]
  result = subprocess.run(script, capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / "lm_self_edit_tiny"
  with open(out.with_suffix(".csv")) as f:
    assert [r["input"] for r in csv.DictReader(f)] == list(self_edit.INPUTS)
  table = out.with_suffix(".md").read_text()
  assert "| reward |" in table and "Bar (the reward rises" in table
  assert out.with_suffix(".png").stat().st_size > 10_000
  logs = [tmp_path / "runs" / "tiny" / "seed_0" / "iterations.jsonl"]
  first = [p.read_text() for p in logs]
  assert all(len(text.splitlines()) == 2 for text in first)  # --iterations=2 per seed
  rows = [json.loads(line) for line in first[0].splitlines()]
  assert [r["iteration"] for r in rows] == [0, 1] and all(r["state"] for r in rows)
  summary = json.loads(out.with_suffix(".json").read_text())["summary"]
  # a re-run finds every iteration done: none redone, the same numbers
  again = subprocess.run(script, capture_output=True, text=True, env=env)
  assert again.returncode == 0, again.stderr[-3000:]
  assert [p.read_text() for p in logs] == first
  assert json.loads(out.with_suffix(".json").read_text())["summary"] == summary

  # a warm start: recorded once per seed, its notes an input of the table
  warm_env = {**env, "WARM_START": "2"}
  warm = subprocess.run(script, capture_output=True, text=True, env=warm_env)
  assert warm.returncode == 0, warm.stdout[-2000:] + warm.stderr[-3000:]
  record = json.loads((tmp_path / "runs" / "tiny_warm" / "seed_0" / "warm_start.json")
                      .read_text())
  assert record["steps"] == 2 and len(record["loss"]) == 2 and all(
      np.isfinite(record["loss"]))
  warm_out = tmp_path / "results" / "lm_self_edit_tiny_warm"
  with open(warm_out.with_suffix(".csv")) as f:
    assert [r["input"] for r in csv.DictReader(f)] == [  # in the writer's order
        *self_edit.INPUTS[:4], self_edit.WARM, self_edit.INPUTS[4]]
  assert "after a warm start of 2 steps" in warm_out.with_suffix(".md").read_text()
  refused = subprocess.run(  # the warm-started workdir with another warm start: one line
      script, capture_output=True, text=True, env={**warm_env, "WARM_START": "3"})
  assert refused.returncode != 0 and "pass --warm_start=2 or another --workdir" in (
      refused.stderr)
