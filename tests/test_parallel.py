"""Same config and seed, same numbers on 1 device, 8 devices and 2 processes x 4 devices."""

import json
import os
import socket
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import parallel
from tests.conftest import ROOT
from tests.parallel_worker import CASES

# Float tolerance: the sharded mean over tasks is an all-reduce whose summation order differs
# from the single-device reduction.
RTOL, ATOL = 1e-5, 1e-6


def _run(*args, devices=8, extra_env=None, check=True):
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **(extra_env or {})}
  result = subprocess.run([sys.executable, "-m", "tests.parallel_worker", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
  if check:
    assert result.returncode == 0, result.stderr[-4000:]
  return result


# The workers inherit the session's JAX compilation cache (tests/conftest.py) through the
# environment: the equivalence run compiles MAML's 5-step chunk on 1 and 8 devices, which the
# resume and 1-process runs then load instead of compiling it again (and the resume run's
# repeated programs compile once anyway).


def test_every_learner_and_estimator_gives_the_same_numbers_on_1_and_8_devices(tmp_path):
  _run("equivalence", tmp_path / "eq.npz")
  with np.load(tmp_path / "eq.npz") as z:
    for name in CASES:
      keys = sorted(k.split("/", 2)[2] for k in z.files if k.startswith(f"{name}/1/"))
      assert any(k.startswith("theta") for k in keys) and "meta_loss" in keys
      for k in keys:
        one, eight = z[f"{name}/1/{k}"], z[f"{name}/8/{k}"]
        assert np.all(np.isfinite(one)), (name, k)
        np.testing.assert_allclose(eight, one, rtol=RTOL, atol=ATOL, err_msg=f"{name} {k}")
      # The run did something: the meta-loss moved over five outer steps.
      assert not np.allclose(z[f"{name}/1/meta_loss"][0], z[f"{name}/1/meta_loss"][-1]), name


def test_checkpoints_move_between_8_and_1_devices(tmp_path):
  _run("resume", tmp_path, tmp_path / "resume.npz")
  with np.load(tmp_path / "resume.npz") as z:
    n = sum(k.startswith("straight") for k in z.files)
    assert n > 0
    for i in range(n):
      np.testing.assert_allclose(z[f"switched{i}"], z[f"straight{i}"], rtol=RTOL, atol=ATOL)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_with_jax_distributed_match_one_process(tmp_path):
  # One process runs both 1-device runs (which compile one program): the reference to step
  # 10, then the first half of the 2-process run, which resumes (both processes restore) from
  # that 1-process checkpoint at step 5.
  _run("train", 1, tmp_path / "single", tmp_path / "single.npz", 10,
       tmp_path / "multi", tmp_path / "first_half.npz", 5, devices=1)
  env = {"METALEARN_COORDINATOR": f"localhost:{_free_port()}", "METALEARN_NUM_PROCESSES": "2"}
  procs = [subprocess.Popen(
      [sys.executable, "-m", "tests.parallel_worker", "train", "-1", str(tmp_path / "multi"),
       str(tmp_path / "multi.npz"), "10"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env={**os.environ, **env, "METALEARN_PROCESS_ID": str(i),
                      "JAX_PLATFORMS": "cpu",
                      "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
      for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-4000:]
  with np.load(tmp_path / "single.npz") as single, np.load(tmp_path / "multi.npz") as multi:
    assert int(multi["devices"]) == 8 and int(multi["processes"]) == 2
    assert int(single["devices"]) == 1
    n = sum(k.startswith("theta") for k in single.files)
    for i in range(n):
      np.testing.assert_allclose(multi[f"theta{i}"], single[f"theta{i}"], rtol=RTOL, atol=ATOL)
  # Process 0 alone wrote the workdir: one metrics file, one line per log step (5 and 10).
  lines = (tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(l)["step"] for l in lines] == [5, 10]


def test_bad_mesh_is_refused_with_the_fix(tmp_path):
  for data, message in ((5, "mesh.data=5: there are 3 devices"),
                        (3, "meta_batch_size (8) must be a multiple of the 3 devices")):
    result = _run("train", data, tmp_path / "w", tmp_path / "o.npz", devices=3, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
  result = _run("train", 1, tmp_path / "w", tmp_path / "o.npz", devices=1, check=False,
                extra_env={"METALEARN_COORDINATOR": "localhost:1"})
  assert result.returncode != 0 and "METALEARN_NUM_PROCESSES" in result.stderr


def test_cpu_devices_are_set_before_jax_starts(monkeypatch):
  # meta_train.py applies mesh.cpu_devices first thing (tests/launch/test_reproduce.py runs
  # the learned-optimizer config's 2 CPU devices end to end); once JAX has started it is refused
  # with the reason, and 0 (JAX's default) changes nothing.
  count = jax.device_count()
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  parallel.use_cpu_devices(0)
  with pytest.raises(RuntimeError, match="before backends are initialized"):
    parallel.use_cpu_devices(count + 1)
  # an explicit XLA_FLAGS device count (launch/local.sh's DEVICES_PER_PROCESS) wins: no-op
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
  parallel.use_cpu_devices(count + 1)
  assert jax.device_count() == count and jax.config.jax_num_cpu_devices == -1


def test_compile_options_turn_xla_optimisation_off_or_leave_jax_setting():
  key = "jax_disable_most_optimizations"
  before = jax.config.values[key]
  try:
    jax.config.update(key, False)
    parallel.use_compile_options(config_lib.validate(config_lib.default_config()).compile)
    assert jax.config.values[key] is False  # optimize=True (the default) leaves JAX's setting
    parallel.use_compile_options(ml_collections.ConfigDict({"optimize": False}))
    assert jax.config.values[key] is True
  finally:
    jax.config.update(key, before)


@pytest.mark.parametrize("path, arg", [
    ("maml_sinusoid.py", "maml,tiny"), ("multimodal.py", "tiny"), ("omniglot.py", "maml,tiny"),
    ("textbook.py", "regression,tiny"), ("learned_optimizer.py", "mlp_lopt,tiny"),
    ("in_context.py", "gd,tiny")])
def test_tiny_sizes_compile_fast_and_the_others_optimise(path, arg):
  module = config_lib.load_config_module(str(ROOT / "experiments" / "configs" / path))
  assert config_lib.validate(module.get_config(arg)).compile.optimize is False
  full = module.get_config(arg.replace("tiny", "").strip(","))
  assert config_lib.validate(full).compile.optimize is True
