"""Shared test setup: the repo root, a small fast config, and the offline Omniglot zips."""

import atexit
import os
import pathlib
import shutil
import tempfile

# One persistent XLA compilation cache per test session, fresh every run and removed at its
# end, shared with the subprocesses the tests start (binaries, launch scripts): the tiny
# configs compile the same programs many times, and each now compiles once. Set before JAX is
# imported; an outer JAX_COMPILATION_CACHE_DIR wins.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix="metalearn-tests-xla-cache-")
  atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

import pytest

from metalearn import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The small Omniglot zips (images_background_small1/2.zip): $METALEARN_OMNIGLOT_DIR, else the
# team's shared data beside the repository.
OMNIGLOT_DIR = pathlib.Path(os.environ.get("METALEARN_OMNIGLOT_DIR")
                            or ROOT.parent / "shared" / "data" / "omniglot")


@pytest.fixture
def omniglot_dir(tmp_path, monkeypatch):
  """The Omniglot zip directory, exported as $METALEARN_OMNIGLOT_DIR, with a per-test cache."""
  if not (OMNIGLOT_DIR / "images_background_small1.zip").exists():
    pytest.skip(f"Omniglot zips not found in {OMNIGLOT_DIR}: set METALEARN_OMNIGLOT_DIR")
  monkeypatch.setenv("METALEARN_OMNIGLOT_DIR", str(OMNIGLOT_DIR))
  monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
  return OMNIGLOT_DIR


@pytest.fixture
def tiny_config():
  """MAML on 5-shot sinusoids, sized to compile and run in seconds."""
  c = config_lib.default_config()
  c.task.num_support = 5
  c.task.num_query = 5
  c.model.hidden = (16, 16)
  c.meta_batch_size = 4
  c.num_steps = 40
  c.steps_per_call = 10
  c.log_every = 10
  c.checkpoint_every = 20
  c.eval.num_tasks = 20
  c.eval.num_query = 10
  c.eval.num_inner_steps = 5
  c.eval.report_steps = (0, 1, 5)
  c.eval.pretrain_steps = 20
  c.eval.num_tuning_tasks = 10
  c.eval.num_plot_tasks = 2
  return c
