"""Shared test setup: the repo root, a small fast config, and the offline Omniglot zips."""

import atexit
import fcntl
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

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

# One directory per test session shared by the xdist workers and removed at its end, created
# by the controller as the cache above: what several tests need is built there once
# (:func:`built_once`).
if "METALEARN_TESTS_SHARED_DIR" not in os.environ:
  _SHARED = tempfile.mkdtemp(prefix="metalearn-tests-shared-")
  atexit.register(shutil.rmtree, _SHARED, ignore_errors=True)
  os.environ["METALEARN_TESTS_SHARED_DIR"] = _SHARED

# The suite checks logic (values, shapes, gradients, determinism, resume, reports), not the
# speed of compiled code, and it is bound by XLA compilation: compile with the backend's
# expensive optimisations off (as flax's own LM test does), here and in every process a test
# starts. Numerics stay within float tolerance; every equality the tests assert (same seed,
# resume, 1 vs 8 devices) compares programs compiled the same way. An outer
# JAX_DISABLE_MOST_OPTIMIZATIONS=0 restores full optimisation.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# NumPy's OpenBLAS starts a thread per core in every process and keeps them spinning after a
# call; the suite runs two workers on two cores and starts many processes, so those
# threads only take time from the other worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax
import pytest

from metalearn import config as config_lib
from metalearn.tasks import sample_batch

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The small Omniglot zips (images_background_small1/2.zip): $METALEARN_OMNIGLOT_DIR, else the
# team's shared data beside the repository.
OMNIGLOT_DIR = pathlib.Path(os.environ.get("METALEARN_OMNIGLOT_DIR")
                            or ROOT.parent / "shared" / "data" / "omniglot")
# The Python tutorial's sources: $METALEARN_PYTHON_TUTORIAL_DIR, else the shared data.
PYTHON_TUTORIAL_DIR = pathlib.Path(os.environ.get("METALEARN_PYTHON_TUTORIAL_DIR")
                                   or ROOT.parent / "shared" / "data" / "python_tutorial")


CONFIGS = ROOT / "experiments" / "configs"

# ``metalearn.tasks.sample_batch`` as one compiled program (per family structure and count), for
# tests that draw tasks outside a compiled function: run eagerly, a vmapped sampler compiles
# every operation on its own. (The family must be a pytree, as every family meta-training
# passes to its compiled step is.)
sample_tasks = jax.jit(sample_batch, static_argnums=2)
# "``ARG`` N s" in a config's docstring: the measured wall time of its tiny run ARG.
_STATED_TIME = re.compile(r"``([^`]*\btiny\b[^`]*)`` (\d+) s\b")


def stated_tiny_seconds(config_file: str) -> dict[str, int]:
  """The wall times ``experiments/configs/<config_file>``'s docstring states for its tiny
  runs (one core, cold start, compilation and evaluation included)."""
  module = config_lib.load_config_module(str(CONFIGS / config_file))
  return {arg: int(s) for arg, s in _STATED_TIME.findall(" ".join(module.__doc__.split()))}


def check_tiny_time(config_file: str, arg: str, seconds: float, workdir=None) -> None:
  """A tiny run took at most 3x the wall time its config's docstring states. With
  ``workdir``, the run there must be exactly ``arg``'s config (its ``config.json``)."""
  stated = stated_tiny_seconds(config_file)
  assert arg in stated, f"{config_file}'s docstring states no wall time for ``{arg}``"
  if workdir is not None:
    module = config_lib.load_config_module(str(CONFIGS / config_file))
    expected = json.loads(config_lib.validate(module.get_config(arg)).to_json())
    assert json.loads((pathlib.Path(workdir) / "config.json").read_text()) == expected, (
        f"the run in {workdir} is not {config_file}:{arg}")
  assert seconds <= 3 * stated[arg], (
      f"{config_file}:{arg} took {seconds:.0f} s, over 3x the {stated[arg]} s its docstring "
      "states: make it faster, or measure it again and state the new time")


def meta_train_tiny(config_file: str, arg: str, workdir):
  """``experiments/configs/<config_file>:<arg>`` through meta_train.py in a subprocess (it
  inherits the session's compilation cache), its wall time checked by :func:`check_tiny_time`;
  returns the finished process."""
  t0 = time.perf_counter()
  result = subprocess.run(
      [sys.executable, str(ROOT / "experiments" / "meta_train.py"),
       f"--config={CONFIGS / config_file}:{arg}", f"--workdir={workdir}"],
      capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-3000:]
  check_tiny_time(config_file, arg, time.perf_counter() - t0, workdir)
  return result


def check_tiny_run_time(workdir, config_file: str, arg: str) -> None:
  """:func:`check_tiny_time` for a run of a launch/reproduce script (its workdir records the
  wall time in ``wall_seconds.txt``)."""
  seconds = float((pathlib.Path(workdir) / "wall_seconds.txt").read_text())
  check_tiny_time(config_file, arg, seconds, workdir)


def built_once(name: str, build) -> pathlib.Path:
  """The session's shared ``name`` directory, built by ``build(path)`` in the first worker
  that asks for it; a worker asking meanwhile waits for it (a file lock), later ones reuse it.
  A build that raised is not reused: the next asker builds again and meets the error itself."""
  root = pathlib.Path(os.environ["METALEARN_TESTS_SHARED_DIR"])
  path = root / name
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (root / f"{name}.done").exists():
      shutil.rmtree(path, ignore_errors=True)
      path.mkdir()
      build(path)
      (root / f"{name}.done").touch()
  return path


@pytest.fixture
def python_tutorial_dir(monkeypatch):
  """The Python tutorial's directory, exported as $METALEARN_PYTHON_TUTORIAL_DIR."""
  if not (PYTHON_TUTORIAL_DIR / "index.rst.txt").exists():
    pytest.skip(f"the Python tutorial's sources are not in {PYTHON_TUTORIAL_DIR}: set "
                "METALEARN_PYTHON_TUTORIAL_DIR")
  monkeypatch.setenv("METALEARN_PYTHON_TUTORIAL_DIR", str(PYTHON_TUTORIAL_DIR))
  return PYTHON_TUTORIAL_DIR


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
_RUN_FIRST = ("tests/lm/test_lm_knowledge.py", "tests/experiments/test_binaries.py",
              "tests/launch/test_reproduce.py", "tests/learners/test_lora_finetune.py",
              "tests/lm/test_lm_meta_reading.py", "tests/lm/test_lm_self_edit.py",
              "tests/lm/test_lm_textbook_teacher.py", "tests/test_exported.py",
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
