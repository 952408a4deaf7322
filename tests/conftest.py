"""Shared test setup: the repo root, a small fast config, and the offline Omniglot zips."""

import atexit
import os
import pathlib
import shutil
import tempfile

# One persistent XLA compilation cache per test session, fresh every run and removed at its
# end, shared with the subprocesses the tests start (binaries, launch scripts): the tiny
# configs compile the same programs many times, and each now compiles once. Set before JAX is
# imported; an outer JAX_COMPILATION_CACHE_DIR wins. Under pytest-xdist (`-n 2`, as README.md
# runs the suite) the controller imports this file before it starts its workers, which inherit
# its environment: every worker, and every process a worker starts, shares the controller's
# directory, and only the controller (its atexit, after the workers have ended) removes it.
# Tests use this cache through the inherited environment rather than caches of their own, so
# that one test's programs (the evaluation's, the first-step operations) serve the others.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix="metalearn-tests-xla-cache-")
  atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

# The suite checks logic (values, shapes, gradients, determinism, resume, reports), not the
# speed of compiled code, and it is bound by XLA compilation: compile with the backend's
# expensive optimisations off (as flax's own LM test does), here and in every process a test
# starts. Numerics stay within float tolerance; every equality the tests assert (same seed,
# resume, 1 vs 8 devices) compares programs compiled the same way. An outer
# JAX_DISABLE_MOST_OPTIMIZATIONS=0 restores full optimisation.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

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


# The end-to-end tests (binaries, launch scripts, notebooks, multi-device subprocesses) take
# from 5 s to about 2 minutes each, nearly all of it compiling; the rest take seconds. Run
# under xdist, the heavy ones go first and one test at a time goes to whichever worker is
# free (`--maxschedchunk=1`), so the workers end together instead of one finishing a long
# test alone while the other idles (longest first; order within a module kept).
_RUN_FIRST = ("tests/experiments/test_binaries.py", "tests/launch/test_reproduce.py",
              "tests/launch/test_launchers.py", "tests/launch/test_reproduce_progress.py",
              "tests/colabs/", "tests/test_parallel.py", "tests/launch/",
              "tests/models/test_networks.py", "tests/test_train.py")


def pytest_configure(config):
  # None: pytest-xdist is installed and the command line did not set it
  if getattr(config.option, "maxschedchunk", "absent") is None:
    config.option.maxschedchunk = 1


def pytest_collection_modifyitems(config, items):
  del config  # unused

  def rank(item):
    path = pathlib.Path(str(item.path)).resolve()
    path = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return next((i for i, p in enumerate(_RUN_FIRST) if path.startswith(p)), len(_RUN_FIRST))
  items.sort(key=rank)  # stable: the order within each module is kept
