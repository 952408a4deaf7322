"""Run by tests/lm/test_lm_sharding.py in a process with 8 CPU devices: the decoder LM on a
1-device mesh and on a (data 2, fsdp 2, tensor 2) mesh; prints the differences as JSON."""

import functools
import json
import sys
import tempfile

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn import lm
from metalearn.lm import hf, sharding
from metalearn.lm import train as lm_train


def run(mesh, c, batch, directory):
  model = lm.create(c, seed=0, mesh=mesh)
  # eps bounds how much Adam magnifies the float noise of a sharded reduction in a gradient
  # entry near zero: |d update| <= lr * |d g| / eps.
  optimizer = optax.adamw(1e-2, eps=1e-3)
  graphdef, state = lm_train.init(model, optimizer, mesh)
  target = lm_train.state_shardings(state, mesh, optimizer)
  step = jax.jit(lm_train.make_step(graphdef, optimizer), out_shardings=(target, None),
                 donate_argnums=0)
  batch = jax.device_put(batch, lm_train.batch_sharding(mesh))
  losses = []
  with jax.set_mesh(mesh):
    for _ in range(3):
      state, metrics = step(state, batch)
      losses.append(float(metrics["loss"]))
  trained = nnx.merge(graphdef, state.params)
  hf.save(trained, directory)
  loaded = hf.load(directory, mesh=mesh)
  with jax.set_mesh(mesh):
    cache = lm.init_cache(c, 8, 16)
    logits, cache = loaded(batch["tokens"][:, :6], positions=jnp.broadcast_to(
        jnp.arange(6), (8, 6)), cache=cache)
    step_logits, _ = loaded(batch["tokens"][:, 6:7], positions=jnp.full((8, 1), 6),
                            cache=cache)
  gate = state.params["layers"]["mlp"]["gate"][...]
  loaded_gate = loaded.layers.mlp.gate[...]
  return dict(losses=losses, logits=np.asarray(logits), step=np.asarray(step_logits),
              params=[np.asarray(x) for x in jax.tree.leaves(state.params)],
              gate_spec=str(gate.sharding.spec), gate_shard=list(
                  gate.addressable_shards[0].data.shape),
              loaded_gate_spec=str(loaded_gate.sharding.spec))


def compare(name):
  c = lm.from_group(dict(name=name, vocab_size=64, hidden_size=32, intermediate_size=48,
                         num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8))
  rng = np.random.RandomState(0)
  batch = {"tokens": jnp.asarray(rng.randint(0, 64, (8, 13)), jnp.int32),
           "weights": jnp.asarray(rng.rand(8, 13) > 0.1, jnp.float32)}
  with tempfile.TemporaryDirectory() as d:
    one = run(sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1]), c, batch, d + "/one")
    eight = run(sharding.make_mesh(2, 2, 2), c, batch, d + "/eight")
  diff = functools.partial(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
  return dict(
      losses_one=one["losses"], losses_eight=eight["losses"],
      params=max(diff(a, b) for a, b in zip(one["params"], eight["params"])),
      logits=diff(one["logits"], eight["logits"]), step=diff(one["step"], eight["step"]),
      gate_spec=eight["gate_spec"], gate_shard=eight["gate_shard"],
      loaded_gate_spec=eight["loaded_gate_spec"])


def main():
  assert jax.device_count() == 8, jax.device_count()
  print(json.dumps({name: compare(name) for name in sys.argv[1:]}))


if __name__ == "__main__":
  main()
