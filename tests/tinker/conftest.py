"""Shared by the Tinker server tests: the server in a subprocess on a free localhost port over
a tiny base model (a byte-level tokenizer and a 2-layer Qwen3 saved in HF format)."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from metalearn import lm
from metalearn.lm import hf
from metalearn.lm import tokenizer as tok_lib
from tests.conftest import ROOT


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class _Server:
  """experiments/serve_tinker.py in a subprocess (it exits by itself after 120 s idle)."""

  def __init__(self, base, root):
    self.base, self.root, self.port, self.proc = base, root, _free_port(), None

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self.port}"

  def start(self):
    self.proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "serve_tinker.py"),
         f"--base_model=tiny={self.base}", f"--root={self.root}", f"--port={self.port}",
         "--idle_exit_seconds=120", "--poll_seconds=2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      if self.proc.poll() is not None:
        raise RuntimeError(f"the server exited: {self.proc.stdout.read()[-3000:]}")
      try:
        if httpx.get(f"{self.url}/api/v1/healthz", timeout=1).status_code == 200:
          return self
      except httpx.HTTPError:
        time.sleep(0.3)
    raise RuntimeError("the server did not answer healthz within 60 s")

  def kill(self):
    if self.proc is not None and self.proc.poll() is None:
      self.proc.send_signal(signal.SIGKILL)
      self.proc.wait(timeout=30)


def save_tiny_base(directory) -> tok_lib.Tokenizer:
  """A 2-layer Qwen3 over a byte-level tokenizer, saved in HF format in ``directory``; returns
  the tokenizer."""
  tok = tok_lib.byte_level()
  c = lm.from_group(dict(name="qwen3", vocab_size=tok.vocab_size, hidden_size=32,
                         intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                         head_dim=8, max_position_embeddings=128, eos_token_id=tok.eos_id))
  hf.save(lm.create(c, seed=0), directory)
  tok_lib.save(tok, directory)
  return tok


@pytest.fixture(scope="module")
def tinker_server(tmp_path_factory):
  base = tmp_path_factory.mktemp("base")
  tok = save_tiny_base(base)
  server = _Server(base, tmp_path_factory.mktemp("root")).start()
  yield server, tok, base
  server.kill()
