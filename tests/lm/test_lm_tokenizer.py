"""Tokenizers, offline: a BPE trained on a local corpus, the byte-level fallback, saving and
loading (transformers reads the files too), and a vocabulary that does not fit the model."""

import json

import pytest

from metalearn import lm
from metalearn.lm import tokenizer as tok_lib

CORPUS = ["Ada Lovelace was born in London in 1815.",
          "Alan Turing was born in London in 1912.",
          "Grace Hopper was born in New York in 1906."] * 20


def test_bpe_trained_on_a_corpus_round_trips_any_text(tmp_path):
  tok = tok_lib.train_bpe(CORPUS, vocab_size=300)
  assert tok.vocab_size == 300
  ids = tok.encode(CORPUS[0])
  assert len(ids) < len(CORPUS[0]) / 2  # merges learnt: fewer tokens than characters
  for text in (CORPUS[1], "unseen: ünïcödé ✓ 𝛑 \t\n"):
    assert tok.decode(tok.encode(text)) == text
  assert tok.encode("x", bos=True, eos=True)[0] == tok.bos_id
  assert tok.encode("x", bos=True, eos=True)[-1] == tok.eos_id
  tok_lib.save(tok, tmp_path, model_max_length=128)
  again = tok_lib.load(tmp_path)
  assert again.encode(CORPUS[2]) == tok.encode(CORPUS[2])
  assert (again.bos_id, again.eos_id, again.pad_id) == (tok.bos_id, tok.eos_id, tok.pad_id)


def test_byte_level_fallback_needs_no_training():
  tok = tok_lib.byte_level()
  assert tok.vocab_size == 256 + 3
  text = "bytes: é ✓"
  assert len(tok.encode(text)) == len(text.encode()) and tok.decode(tok.encode(text)) == text


def test_transformers_reads_the_saved_tokenizer(tmp_path):
  transformers = pytest.importorskip("transformers", reason="the parity extra")
  tok = tok_lib.train_bpe(CORPUS, vocab_size=280)
  tok_lib.save(tok, tmp_path)
  theirs = transformers.AutoTokenizer.from_pretrained(tmp_path)
  assert theirs.encode(CORPUS[0], add_special_tokens=False) == tok.encode(CORPUS[0])
  assert theirs.eos_token_id == tok.eos_id and theirs.pad_token_id == tok.pad_id


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path):
  tok = tok_lib.byte_level()
  config = lm.from_group(dict(name="llama", vocab_size=200))
  with pytest.raises(tok_lib.TokenizerError, match="259 tokens but the model's embedding has "
                     "200 rows"):
    tok_lib.check_matches(tok, config)
  with pytest.raises(tok_lib.TokenizerError, match="no tokenizer.json"):
    tok_lib.load(tmp_path)
  (tmp_path / "tokenizer.json").write_text(json.dumps({"model": 3}))
  with pytest.raises(tok_lib.TokenizerError, match="not a tokenizers file"):
    tok_lib.load(tmp_path)
