"""Devices: the mesh meta-training runs on, how tasks are sharded over it, and multi-host setup.

One program runs on every device (SPMD). The outer step is jitted once; inside it the
meta-batch of sampled tasks carries a sharding constraint along the mesh's ``data`` axis, so
each device samples and unrolls only its own tasks, while meta-parameters, optimizer state and
metrics are replicated. The mean over tasks of the meta-objective, and therefore the
meta-gradient, becomes an all-reduce that XLA inserts; no per-device code is written.

Why the numbers do not depend on the device count: task ``i`` of a meta-batch is drawn from
``split(key, B)[i]`` whatever device computes it (``jax_threefry_partitionable``, on by
default, makes random bits independent of sharding), so 1 device, 8 devices and 2 processes x
4 devices sample identical tasks. Per-process sampling with ``fold_in(key, process_index)``
would draw different tasks for different process counts and is deliberately not used.

Multi-host: :func:`initialize` calls ``jax.distributed.initialize()`` when the environment
describes several processes (TPU pod slices and SLURM are detected by JAX itself; otherwise
``METALEARN_COORDINATOR``, ``METALEARN_NUM_PROCESSES`` and ``METALEARN_PROCESS_ID``). Every
process builds the same replicated state (same seed, same config) and
:func:`replicate` assembles it into global arrays with
``jax.make_array_from_process_local_data``. Only process 0 writes files.
"""

import os

from absl import logging
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA = "data"
_ENV = ("METALEARN_COORDINATOR", "METALEARN_NUM_PROCESSES", "METALEARN_PROCESS_ID")


def initialize() -> None:
  """Starts ``jax.distributed`` when this is one of several processes; a no-op otherwise.

  Must run before any other JAX call. Several processes are recognised by the
  ``METALEARN_*`` variables (localhost and plain clusters) or by JAX's own cluster detection
  (Cloud TPU pod slices, SLURM, ...), which ``METALEARN_DISTRIBUTED=1`` asks for.
  """
  given = [os.environ.get(k) for k in _ENV]
  if any(given) and not all(given):
    raise ValueError(f"set all of {_ENV} for a multi-process run, or none; got "
                     f"{dict(zip(_ENV, given))}")
  if all(given):
    jax.distributed.initialize(coordinator_address=given[0], num_processes=int(given[1]),
                               process_id=int(given[2]))
  elif os.environ.get("METALEARN_DISTRIBUTED") == "1":
    jax.distributed.initialize()  # cluster auto-detection (TPU VMs, SLURM, ...)
  else:
    return
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())


def use_cpu_devices(count: int) -> None:
  """Splits this host's CPU into ``count`` JAX devices (``mesh.cpu_devices``).

  XLA runs one program's small operations (e.g. the batched per-parameter matmuls of a learned
  optimizer) on one core; as several devices, the meta-batch split over them (``mesh.data``)
  runs on all the cores at once. ``0`` leaves JAX's default (one CPU device, or what
  ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` says); ``-1``: one device per
  core this process may use. An explicit ``--xla_force_host_platform_device_count`` (e.g.
  ``launch/local.sh``'s ``DEVICES_PER_PROCESS``) wins: the count is then left as it says.
  Accelerators are unaffected: on a GPU or TPU host the mesh is built from them. Like
  :func:`initialize`, must run before any other JAX call.
  """
  if count == 0:
    return
  if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
    logging.info("mesh.cpu_devices=%d not applied: XLA_FLAGS sets the CPU device count", count)
    return
  if count == -1:
    count = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
  jax.config.update("jax_num_cpu_devices", count)  # raises if JAX has already started


def use_compile_options(options) -> None:
  """Applies the config's ``compile`` group: ``optimize=False`` compiles every later program
  with XLA's expensive backend optimisations off (``jax_disable_most_optimizations``), which
  compiles several times faster and runs slower; ``True`` leaves JAX's own setting (its
  default, or ``JAX_DISABLE_MOST_OPTIMIZATIONS`` from the environment).

  (XLA:CPU's older elemental emitters, ``--xla_cpu_use_fusion_emitters=false``, would compile
  several times faster still, but together with the backend optimisations off they computed
  wrong vmapped convolution gradients (tests/models/test_networks.py); they are not used.)"""
  if not options.optimize:
    jax.config.update("jax_disable_most_optimizations", True)


def make_mesh(data: int = -1) -> jax.sharding.Mesh:
  """A 1-D mesh with axis ``data`` over ``data`` devices (-1: all of them, across hosts)."""
  n = jax.device_count() if data == -1 else data
  if not 1 <= n <= jax.device_count():
    raise ValueError(f"mesh.data={data}: there are {jax.device_count()} devices "
                     f"({jax.devices()[0].platform}); use -1 for all or a count up to that")
  return jax.make_mesh((n,), (DATA,), (jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def check_divisible(meta_batch_size: int, mesh: jax.sharding.Mesh, what: str) -> None:
  """Tasks are split evenly over the ``data`` axis: refuse a batch that does not divide."""
  n = mesh.shape[DATA]
  if meta_batch_size % n:
    raise ValueError(f"{what} ({meta_batch_size}) must be a multiple of the {n} devices of "
                     f"the mesh's data axis: change it, or set mesh.data to a divisor")


def task_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (task / population) axis split over ``data``; other axes whole."""
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_tasks(tree, mesh: jax.sharding.Mesh | None):
  """Constrains every leaf's leading axis to the ``data`` axis (inside jit); no mesh: as is."""
  if mesh is None:
    return tree
  return jax.lax.with_sharding_constraint(tree, task_sharding(mesh))


def replicate(tree, mesh: jax.sharding.Mesh):
  """Host values (identical on every process) as arrays replicated over ``mesh``."""
  sharding = replicated(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
  """Numpy copies of replicated (or fully addressable) arrays, on every process."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array)
                      and not x.is_fully_addressable else np.asarray(x), tree)
