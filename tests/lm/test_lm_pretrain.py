"""The base-model pretraining binary at ``tiny``: it trains, exports an HF-format directory that
our loader (and transformers) read with its tokenizer, resumes bit-identically, and refuses a
wrong config before anything compiles."""

import json
import os
import re
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn.lm import corpus as corpus_lib
from metalearn.lm import hf, pretrain
from metalearn.lm import tokenizer as tok_lib
from metalearn.registry import ConfigError
from tests.conftest import ROOT

SCRIPT = ROOT / "experiments" / "lm_pretrain.py"
CONFIG = ROOT / "experiments" / "configs" / "lm" / "pretrain.py"
configs = config_lib.load_config_module(str(CONFIG))
# The tiny run's wall time the config's docstring states (one core, cold, compilation
# included); the end-to-end run below must stay within 3x of it.
TINY_SECONDS = int(re.search(r"``tiny``: (\d+) s", " ".join(configs.__doc__.split())).group(1))


def _run(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                        text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("lm_tiny")
  start = time.time()
  result = _run(f"--config={CONFIG}:tiny", f"--workdir={workdir}")
  seconds = time.time() - start
  assert result.returncode == 0, result.stderr[-3000:]
  assert seconds <= 3 * TINY_SECONDS, (
      f"lm/pretrain.py:tiny took {seconds:.0f} s, over 3x the {TINY_SECONDS} s its docstring "
      "states: make it faster, or measure it again and state the new time")
  return workdir


def test_tiny_run_trains_and_exports_a_loadable_model(trained):
  summary = json.loads((trained / "summary.json").read_text())
  rows = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [10, 20]
  assert rows[-1]["eval_loss"] < rows[0]["eval_loss"] and summary["steps"] == 20
  model = hf.load(trained / "model")
  tok = tok_lib.load(trained / "model")
  tok_lib.check_matches(tok, model.config)
  assert model.config.eos_token_id == tok.eos_id and tok.vocab_size == 300
  ids = tok.encode(summary["sample_prompt"])
  logits, _ = model(jnp.asarray([ids]))
  assert logits.shape == (1, len(ids), model.config.vocab_size)


def test_transformers_loads_the_exported_base_model(trained):
  transformers = pytest.importorskip("transformers", reason="the parity extra")
  torch = pytest.importorskip("torch", reason="the parity extra")
  theirs = transformers.AutoModelForCausalLM.from_pretrained(trained / "model").eval()
  tok = transformers.AutoTokenizer.from_pretrained(trained / "model")
  ids = tok.encode("Grace Hopper was born in", add_special_tokens=False)
  ours = hf.load(trained / "model")
  with torch.no_grad():
    want = theirs(torch.tensor([ids])).logits.numpy()
  np.testing.assert_allclose(np.asarray(ours(jnp.asarray([ids]))[0]), want, atol=2e-5)


def test_a_resumed_run_continues_bit_identically(trained, tmp_path):
  config = configs.get_config("tiny")
  config.num_steps = 10
  pretrain.run(config, tmp_path)
  config.num_steps = 20
  pretrain.run(config, tmp_path)  # resumes from step 10
  first = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
  again = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  for a, b in zip(first, again):
    assert {k: v for k, v in a.items() if k != "tokens_per_sec"} == \
        {k: v for k, v in b.items() if k != "tokens_per_sec"}
  assert (tmp_path / "model" / "model.safetensors").read_bytes() == \
      (trained / "model" / "model.safetensors").read_bytes()


def test_a_wrong_config_is_refused_by_name(tmp_path):
  result = _run(f"--config={CONFIG}:tiny", f"--workdir={tmp_path}", "--config.batch_sise=4")
  assert result.returncode != 0 and "Did you mean 'batch_size'" in result.stderr
  config = configs.get_config("tiny")
  config.steps_per_call = 3
  with pytest.raises(ConfigError, match=r"'eval_every' \(10\) must be a multiple of steps_per_call \(3\)"):
    pretrain.validate(config)
  config = configs.get_config("tiny")
  config.lm.vocab_size = 100
  with pytest.raises(tok_lib.TokenizerError, match="300 tokens but the model's embedding has "
                     "100 rows"):
    pretrain.run(config, tmp_path)


@pytest.mark.parametrize("size", ["tiny", "small", "gpu", "full"])
def test_every_size_is_a_valid_config_of_the_stated_model(size):
  config = pretrain.validate(configs.get_config(size))
  c = pretrain.model_config(config)
  assert config.num_steps % config.steps_per_call == 0
  # the parameter counts the config's docstring states
  stated = {"tiny": None, "small": 2.56e6, "gpu": 88.1e6, "full": 1.04e9}[size]
  if stated:
    assert abs(c.num_params() / stated - 1) < 0.01, c.num_params()


def test_the_files_corpus_reads_the_files_its_patterns_match_in_path_order(tmp_path):
  (tmp_path / "pkg").mkdir()
  for name, text in {"b.py": "b = 2\n", "a.py": "a = 1\n", "pkg/c.py": "c = 3\n",
                     "notes.md": "# notes\n", "pkg/d.txt": "d\n", "e.pyc": "binary"}.items():
    (tmp_path / name).write_text(text)
  train, held_out = corpus_lib.files(tmp_path, eval_fraction=0.4)  # *.txt, *.md at any depth
  assert (train, held_out) == (["# notes\n"], ["d\n"])
  train, held_out = corpus_lib.files(tmp_path, 0.4, patterns=("*.py",))  # top level only
  assert (train, held_out) == (["a = 1\n"], ["b = 2\n"])
  train, held_out = corpus_lib.files(tmp_path, 0.25, patterns=("**/*.py", "*.py"))
  assert (train, held_out) == (["a = 1\n", "b = 2\n"], ["c = 3\n"])  # each file once
  with pytest.raises(ConfigError, match=r"holds no file matching corpus.patterns=\('\*.rs',\)"):
    corpus_lib.files(tmp_path, 0.1, patterns=("*.rs",))
  with pytest.raises(ConfigError, match="is not a directory"):
    corpus_lib.files(tmp_path / "absent", 0.1)
  config = configs.get_config("tiny")
  config.corpus = dict(name="files", directory=str(tmp_path), patterns=("*.py", "pkg/*.py"))
  assert pretrain._documents(pretrain.validate(config)) == (["a = 1\n", "b = 2\n"],
                                                             ["c = 3\n"])


def test_the_python_corpus_reads_this_interpreters_standard_library():
  config = pretrain.validate(configs.get_config("small,python"))
  train, held_out = pretrain._documents(config)
  assert any(d.startswith('"""Heap queue algorithm') for d in train)  # heapq.py
  assert len(held_out) >= 1 and len(train) > 100
  assert pretrain.model_config(config).vocab_size == config.tokenizer.vocab_size == 1024
  with pytest.raises(ValueError, match="a size .* or a corpus"):
    configs.get_config("small,rust")
