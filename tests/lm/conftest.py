"""Fixtures of the LM tests: the knowledge-storage script's tiny runs, made once per session."""

import os
import subprocess

import pytest

from tests.conftest import ROOT, built_once


@pytest.fixture(scope="session")
def knowledge_tiny():
  """``launch/reproduce/lm_knowledge_storage.sh tiny``, run once for the session (shared by the
  xdist workers): its directory, with ``runs/`` (one workdir per run) and ``results/``. Its
  seed-0 augmented mix-trained model (``runs/mix_augmented_s0_tiny/model``) is the model the
  reading scripts' ``knowledge_base`` would pretrain, so their tests read it as ``BASE``."""

  def build(path):
    env = {**os.environ, "WORKDIR_ROOT": str(path / "runs"),
           "RESULTS_DIR": str(path / "results"), "PARALLEL": "1", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" /
                                         "lm_knowledge_storage.sh"), "tiny"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

  return built_once("knowledge_tiny", build)


@pytest.fixture(scope="session")
def tiny_base(knowledge_tiny):
  """The tiny base model of the reading scripts (an HF directory): see ``knowledge_tiny``."""
  return knowledge_tiny / "runs" / "mix_augmented_s0_tiny" / "model"
