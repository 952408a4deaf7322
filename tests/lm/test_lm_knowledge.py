"""The knowledge corpus of lm_pretrain (the biography textbook with its questions): the split
into trained and test people, the protocols' texts, the QA rows and their bookkeeping, and the
reproduction script at its tiny size, end to end."""

import csv
import json

import ml_collections
import numpy as np
import pytest

from metalearn.lm import biography_book as bb
from metalearn.lm import pretrain
from metalearn.lm import tokenizer as tok_lib
from metalearn.registry import ConfigError


def _config(**corpus):
  c = ml_collections.ConfigDict()
  c.seed = 4
  c.lm = dict(name="llama", hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2,
              num_kv_heads=1, head_dim=8)
  c.corpus = dict(name="knowledge", num_people=20, qa_fraction=0.5, multiplicity=2,
                  permute=True, fullname=True) | corpus
  return pretrain.validate(c)


def test_the_halves_are_disjoint_and_the_protocols_read_what_they_say():
  config = _config()
  trained, test, bios = pretrain.knowledge_split(config)
  assert {q.person for q in trained}.isdisjoint({q.person for q in test})
  assert len({q.person for q in trained}) == len({q.person for q in test}) == 10
  assert len(bios) == 40 and len(trained) == len(test) == 60
  assert pretrain.knowledge_split(config) == (trained, test, bios)  # a function of the seed
  mix, held_out = pretrain._documents(config)  # pylint: disable=protected-access
  assert sorted(mix) == sorted(bios + [q.text for q in trained])
  assert held_out == [q.text for q in test]
  only_bios, _ = pretrain._documents(_config(parts="bios"))  # pylint: disable=protected-access
  only_qa, _ = pretrain._documents(_config(parts="qa"))  # pylint: disable=protected-access
  assert sorted(only_bios) == sorted(bios) and sorted(only_qa) == sorted(q.text for q in trained)
  with pytest.raises(ConfigError, match="qa_fraction"):
    pretrain.knowledge_split(_config(num_people=1, qa_fraction=0.5))


def test_qa_rows_mark_exactly_the_answer_tokens():
  qas = [q for ch in bb.book(1, 6, seed=0) for q in ch.qa]
  tok = tok_lib.train_bpe([q.text for q in qas] * 3, 300)
  tokens, valid, answer = pretrain.qa_rows(tok, qas)
  for i, qa in enumerate(qas):
    ids = tok.encode(qa.text, bos=True)  # the question and answer as trained: one text
    n = int(valid[i].sum())
    assert list(tokens[i, :n]) == ids and not valid[i, n:].any()
    assert tok.decode(list(tokens[i][answer[i]])).strip() == qa.answer
    assert not answer[i, :n - len(tok.encode(" " + qa.answer, bos=False))].any()


def test_qa_accuracy_is_the_mean_overall_and_per_attribute():
  qas = [q for ch in bb.book(1, 2, seed=0) for q in ch.qa]  # 2 people x 6 attributes
  correct = np.zeros(12, bool)
  correct[[0, 6, 7]] = True  # birth_date of both people, birth_city of the second
  got = pretrain.qa_accuracy(correct, qas, "qa_test")
  assert got["qa_test_accuracy"] == pytest.approx(3 / 12)
  assert got["qa_test/birth_date"] == 1.0 and got["qa_test/birth_city"] == 0.5
  assert got["qa_test/major"] == 0.0 and len(got) == 7


def test_reproduction_script_tiny(knowledge_tiny):
  # the script's tiny run, made once for the session (tests/lm/conftest.py)
  out = knowledge_tiny / "results" / "lm_knowledge_storage_tiny"
  table = out.with_suffix(".md").read_text()
  assert "## mix training" in table and "## pretrain on biographies, then fine-tune" in table
  with open(out.with_suffix(".csv")) as f:
    rows = list(csv.DictReader(f))
  assert {(r["protocol"], r["writing"]) for r in rows} == {
      ("bios+qa", "plain"), ("bios+qa", "augmented"), ("qa", "plain"), ("qa", "augmented")}
  assert out.with_suffix(".png").stat().st_size > 10_000
  # the fine-tuning stage starts from the pretraining stage's export and reads only QA
  finetune = json.loads((knowledge_tiny / "runs" / "finetune_plain_s0_tiny" / "finetune" /
                         "config.json").read_text())
  assert finetune["init_from"].endswith("finetune_plain_s0_tiny/pretrain/model")
  assert finetune["corpus"]["parts"] == "qa"
  metrics = [json.loads(line) for line in (knowledge_tiny / "runs" / "mix_augmented_s0_tiny" /
                                           "metrics.jsonl").read_text().splitlines()]
  assert all(0 <= m["qa_test_accuracy"] <= 1 for m in metrics if "qa_test_accuracy" in m)
