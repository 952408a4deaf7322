"""launch/local.sh (1 and 2 processes), gpu.sh, tpu_pod.sh (dry run) and sweep.py, tiny."""

import json
import os
import socket
import subprocess
import sys


from tests.conftest import ROOT

CONFIG = f"{ROOT / 'experiments' / 'configs' / 'maml_sinusoid.py'}:maml"
# As many tuning as evaluation tasks: one compiled task sampler serves both.
TINY = ["--config.num_steps=20", "--config.steps_per_call=10", "--config.log_every=10",
        "--config.checkpoint_every=20", "--config.meta_batch_size=8",
        "--config.eval.num_tasks=20", "--config.eval.pretrain_steps=10",
        "--config.eval.num_tuning_tasks=20", "--config.eval.num_plot_tasks=0"]
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def _sh(script, *args, env=None):
  return subprocess.run(["bash", str(ROOT / "launch" / script), *map(str, args)],
                        capture_output=True, text=True, env={**ENV, **(env or {})}, cwd=ROOT)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


# The 1-process runs of CONFIG with TINY share programs: the gpu.sh run compiles the same ones
# as the 1-process local.sh run, and the sweep's runs the same first-step operations, task
# sampler and evaluation baselines. The session's JAX compilation cache (tests/conftest.py),
# inherited through ENV, compiles each once.


def test_local_one_and_two_processes_give_the_same_run(tmp_path):
  one = _sh("local.sh", CONFIG, tmp_path / "one", *TINY)
  assert one.returncode == 0, one.stderr[-3000:]
  two = _sh("local.sh", CONFIG, tmp_path / "two", *TINY,
            env={"NUM_PROCESSES": "2", "DEVICES_PER_PROCESS": "2", "PORT": str(_free_port())})
  assert two.returncode == 0, two.stderr[-3000:]
  assert "4 device(s), 2 process(es)" in two.stderr
  results = [json.loads((tmp_path / d / "eval.json").read_text()) for d in ("one", "two")]
  a, b = (r["methods"]["meta"]["mse"] for r in results)
  assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-4
  assert not (tmp_path / "two" / "process_1.log").read_text().count("| meta |")


def test_gpu_script_refuses_without_a_gpu_and_runs_when_allowed(tmp_path):
  refused = _sh("gpu.sh", CONFIG, tmp_path / "w", *TINY)
  assert refused.returncode != 0 and "JAX sees no GPU" in refused.stderr
  allowed = _sh("gpu.sh", CONFIG, tmp_path / "w", *TINY, env={"ALLOW_CPU": "1"})
  assert allowed.returncode == 0, allowed.stderr[-3000:]
  assert (tmp_path / "w" / "eval.json").exists()


def test_tpu_pod_steps_dry_run():
  env = {"TPU_NAME": "ml", "ZONE": "us-central2-b", "TPU_TYPE": "v4-16",
         "VERSION": "tpu-ubuntu2204-base", "BUCKET": "gs://b", "DRY_RUN": "1"}
  create = _sh("tpu_pod.sh", "create", env=env)
  assert create.returncode == 0 and "tpu-vm create ml" in create.stdout
  assert "--accelerator-type=v4-16" in create.stdout
  run = _sh("tpu_pod.sh", "run", CONFIG, "exp1", "--config.num_steps=5", env=env)
  assert run.returncode == 0, run.stderr
  assert "--worker=all" in run.stdout and "METALEARN_DISTRIBUTED=1" in run.stdout
  assert "--workdir=/mnt/metalearn/exp1" in run.stdout
  delete = _sh("tpu_pod.sh", "delete", env=env)
  assert delete.returncode == 0 and "tpu-vm delete ml" in delete.stdout
  missing = _sh("tpu_pod.sh", "create", env={**env, "TPU_TYPE": ""})
  assert missing.returncode != 0 and "TPU_TYPE" in missing.stderr


def test_sweep_runs_a_grid_and_tables_it(tmp_path):
  cmd = [sys.executable, str(ROOT / "launch" / "sweep.py"), f"--config={CONFIG}",
         "--grid=learner.inner_lr=0.01,0.03", "--seeds=0", f"--root={tmp_path}",
         "--parallel=2", "--pin"] + [f"--set={a[len('--config.'):]}" for a in TINY]
  result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-3000:]
  table = (tmp_path / "sweep.md").read_text()
  for lr in ("0.01", "0.03"):
    assert f"| {lr} | 0 |" in table
  assert len((tmp_path / "sweep.csv").read_text().splitlines()) == 3
  again = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
  assert again.returncode == 0 and again.stdout.count(": done") == 2  # finished: skipped
  bad = subprocess.run(cmd[:3] + ["--grid=learner.inner_lr=-1", "--seeds=0",
                                  f"--root={tmp_path / 'bad'}"] + cmd[7:],
                       capture_output=True, text=True, env=ENV, cwd=ROOT)
  assert bad.returncode != 0
