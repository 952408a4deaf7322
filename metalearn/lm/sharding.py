"""The LM's mesh and how its parameters and activations are laid out on it.

Every parameter carries *logical* axis names (``("embed", "mlp")`` for an MLP kernel); the
rules below map them to the mesh's axes, as MaxText and big_vision do:

* ``data``: the batch is split over it, parameters are replicated (data parallelism);
* ``fsdp``: the batch is split over it too, and parameters are split along their ``embed``
  axis (fully sharded data parallelism: XLA gathers a layer's weights where it uses them);
* ``tensor``: heads, the MLP's hidden units and the vocabulary are split over it (Megatron
  tensor parallelism: XLA inserts the reductions after the attention and MLP outputs).

An axis whose length a mesh axis does not divide is replicated instead (a two-head key/value
projection over four tensor devices, say), and :func:`param_shardings` logs which; the numbers
are the same either way, only the memory and communication differ.
"""

from typing import Mapping, Sequence

from absl import logging
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA, FSDP, TENSOR = "data", "fsdp", "tensor"
AXES = (DATA, FSDP, TENSOR)

# Logical axis name -> mesh axis (or axes, or None: replicated).
RULES: Mapping[str, str | tuple[str, ...] | None] = {
    "batch": (DATA, FSDP),
    "length": None,
    "layers": None,
    "embed": FSDP,
    "vocab": TENSOR,
    "mlp": TENSOR,
    "heads": TENSOR,
    "kv_heads": TENSOR,
    "head_dim": None,
    "norm": None,
    "embed_act": None,  # the residual stream's feature axis: whole on every device
}


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A ``(data, fsdp, tensor)`` mesh; one size may be -1: every device the others leave."""
  devices = list(jax.devices() if devices is None else devices)
  sizes = [data, fsdp, tensor]
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"mesh sizes (data={data}, fsdp={fsdp}, tensor={tensor}): each >= 1, "
                     "and at most one -1")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"mesh: {len(devices)} devices do not split into data x fsdp x tensor "
                       f"with the fixed sizes multiplying to {known}")
    sizes[sizes.index(-1)] = len(devices) // known
  total = int(np.prod(sizes))
  if total > len(devices):
    raise ValueError(f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} = {total} "
                     f"devices, but there are {len(devices)}")
  return jax.make_mesh(tuple(sizes), AXES, (jax.sharding.AxisType.Auto,) * 3,
                       devices=devices[:total])


def spec_for(axes: Sequence[str | None], shape: Sequence[int], mesh: jax.sharding.Mesh,
             rules: Mapping = RULES, dropped: list | None = None) -> P:
  """The :class:`PartitionSpec` of an array with logical ``axes`` on ``mesh``."""
  out, used = [], set()
  for name, size in zip(axes, shape):
    target = rules.get(name) if name is not None else None
    if target is None:
      out.append(None)
      continue
    targets = (target,) if isinstance(target, str) else tuple(target)
    targets = tuple(t for t in targets if t in mesh.shape and mesh.shape[t] > 1
                    and t not in used)
    n = int(np.prod([mesh.shape[t] for t in targets])) if targets else 1
    if not targets or size % n:
      if targets and dropped is not None:
        dropped.append((name, size, targets))
      out.append(None)
      continue
    used.update(targets)
    out.append(targets[0] if len(targets) == 1 else targets)
  return P(*out)


def param_shardings(state, mesh: jax.sharding.Mesh, rules: Mapping = RULES):
  """The :class:`NamedSharding` of every variable of an ``nnx.State`` (abstract or not), from
  its logical axes (its ``out_sharding`` metadata), in a tree of the state's structure (each
  variable holding its sharding): usable as ``jit``'s ``out_shardings`` for the state."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  dropped: list = []

  def one(var):
    value = var.get_value()
    axes = var.get_metadata().get("out_sharding") or (None,) * value.ndim
    return var.replace(NamedSharding(mesh, spec_for(axes, value.shape, mesh, rules, dropped)))

  out = jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
  for name, size, targets in sorted(set(dropped)):
    logging.info("sharding: a %r axis of length %d is replicated (mesh axes %s do not divide "
                 "it)", name, size, targets)
  return out


def constrain(x: jax.Array, axes: Sequence[str | None], rules: Mapping = RULES) -> jax.Array:
  """``x`` constrained to its logical ``axes`` on the mesh in context (``jax.set_mesh``); with
  no mesh set, ``x`` as is."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  return jax.lax.with_sharding_constraint(x, spec_for(axes, x.shape, mesh, rules))
