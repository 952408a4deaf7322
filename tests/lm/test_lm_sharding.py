"""The decoder LM on 1 device and on 8 (data 2 x fsdp 2 x tensor 2): the same training losses,
parameters, prefill and cached-decode logits; parameters really split; an HF checkpoint loaded
straight into its sharding."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_one_and_eight_devices_give_the_same_numbers():
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
  result = subprocess.run([sys.executable, "-m", "tests.lm.lm_sharding_worker", "llama",
                           "qwen3"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-4000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  for name, r in out.items():
    # Float tolerance: sharded matmuls and reductions sum in another order.
    for a, b in zip(r["losses_one"], r["losses_eight"]):
      assert abs(a - b) < 1e-5, (name, r)
    assert r["losses_one"][-1] < r["losses_one"][0] - 0.3, (name, r)  # it trains
    assert r["params"] < 1e-5 and r["logits"] < 1e-5 and r["step"] < 1e-5, (name, r)
    # The MLP kernel [layers, embed, mlp] is split over fsdp and tensor: a quarter per device.
    assert r["gate_spec"] == "P(None, 'fsdp', 'tensor')" and r["gate_shard"] == [2, 16, 24]
    assert r["loaded_gate_spec"] == r["gate_spec"]
