"""Orbax checkpoints written off the training thread, each verified by a manifest of hashes.

Layout under ``directory``: orbax's ``<step>/`` folders, plus ``manifests/<step>.json`` listing
the SHA-256 of every file of that step, written only after orbax has committed the step. On
restore, steps are tried newest first; one whose manifest is missing (killed between commit and
manifest) or whose files no longer match it (truncated, overwritten) is moved to
``<directory>_corrupt/<step>-<n>/`` with a warning, and the previous step is used. Nothing is
deleted. A ``read_only`` checkpointer (evaluation next to a running training job) only skips
such steps and leaves every file where it is.
"""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import shutil

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from metalearn import logs
from metalearn import parallel

logs.drop_restatements()  # orbax's warning on every read-only manager, which we open by design


def flatten_by_path(tree) -> dict:
  """``{key path: leaf}`` of a pytree (``jax.tree_util.keystr`` paths): a flat, named layout
  for checkpoints of trees (e.g. ``nnx.State`` or optax states) orbax and npz store as dicts."""
  return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def unflatten_by_path(template, flat: dict):
  """The tree of ``template``'s structure with leaves from ``flat`` (:func:`flatten_by_path`);
  a path ``flat`` lacks raises ``KeyError`` naming it."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(template)
  return jax.tree_util.tree_unflatten(treedef, [flat[jax.tree_util.keystr(p)] for p, _ in paths])


def _file_hashes(step_dir: pathlib.Path) -> dict[str, str]:
  out = {}
  for path in sorted(p for p in step_dir.rglob("*") if p.is_file()):
    out[str(path.relative_to(step_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
  return out


def _empty(x) -> bool:
  return isinstance(x, (np.ndarray, jax.Array, jax.ShapeDtypeStruct)) and 0 in x.shape


def _hollow(tree):
  """``tree`` with its zero-size arrays (an episode's empty draw, say) as ``None``: orbax
  refuses to save them; :func:`_refill` puts them back."""
  return jax.tree.map(lambda x: None if _empty(x) else x, tree)


def _refill(restored, template):
  """``restored`` (a :func:`_hollow` tree) with ``template``'s zero-size arrays back."""
  leaves, treedef = jax.tree.flatten(template)
  kept = iter(jax.tree.leaves(restored))
  return treedef.unflatten([np.zeros(x.shape, x.dtype) if _empty(x) else next(kept)
                            for x in leaves])


class Checkpointer:
  """Saves pytrees asynchronously (one background writer) and restores the newest good one.

  Args:
    directory: where checkpoints live (created if missing).
    max_to_keep: how many recent steps orbax keeps.
    read_only: never write, move or clean up anything (for readers such as evaluation).
  """

  def __init__(self, directory: str | os.PathLike, max_to_keep: int, read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    self._manifests = self.directory / "manifests"
    self._read_only = read_only
    self._is_writer = jax.process_index() == 0 and not read_only
    if read_only:  # what read-only implies (orbax overrides each other value with a warning)
      mode = dict(max_to_keep=None, save_interval_steps=0, create=False,
                  cleanup_tmp_directories=False)
    else:
      mode = dict(max_to_keep=max_to_keep, cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            **mode, enable_async_checkpointing=False, read_only=read_only))
    self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._pending: concurrent.futures.Future | None = None

  def save(self, step: int, tree) -> None:
    """Starts saving ``tree`` at ``step``; returns once the tree is copied to host memory."""
    if self._read_only:
      raise RuntimeError(f"this Checkpointer of {self.directory} is read-only")
    self._raise_if_failed()
    host_tree = _hollow(parallel.to_host(tree))
    self._pending = self._executor.submit(self._write, step, host_tree)

  def _write(self, step, host_tree):
    self._manager.save(step, args=ocp.args.StandardSave(host_tree))
    self._manager.wait_until_finished()
    if self._is_writer:
      self._manifests.mkdir(parents=True, exist_ok=True)
      tmp = self._manifests / f"{step}.json.tmp"
      tmp.write_text(json.dumps(_file_hashes(self.directory / str(step)), indent=1))
      tmp.replace(self._manifests / f"{step}.json")
      kept = {str(s) for s in self._manager.all_steps()}
      for stale in self._manifests.glob("*.json"):
        if stale.stem not in kept:
          stale.unlink()

  def _raise_if_failed(self):
    if self._pending is not None and self._pending.done():
      self._pending.result()  # re-raises a failed write in the training thread

  def wait(self) -> None:
    """Blocks until the last save is committed; raises if it failed."""
    if self._pending is not None:
      self._pending.result()

  def close(self) -> None:
    self.wait()
    self._executor.shutdown()
    self._manager.close()

  def _check(self, step: int) -> str | None:
    """Why ``step`` cannot be trusted, or None when its files match its manifest."""
    manifest = self._manifests / f"{step}.json"
    if not manifest.exists():
      return "no manifest (the writer was stopped before it finished)"
    try:
      expected = json.loads(manifest.read_text())
    except json.JSONDecodeError as e:
      return f"its manifest {manifest} is damaged ({e})"
    actual = _file_hashes(self.directory / str(step))
    bad = sorted(k for k in expected if actual.get(k) != expected[k])
    if bad:
      return f"{len(bad)} file(s) missing or changed since they were written, e.g. {bad[0]}"
    return None

  def _quarantine(self, step: int, reason: str) -> None:
    if self._read_only:
      logging.warning("Checkpoint at step %d is not usable: %s. Skipping it (read-only).", step,
                      reason)
      return
    dest_root = self.directory.parent / (self.directory.name + "_corrupt")
    dest_root.mkdir(exist_ok=True)
    n = sum(1 for _ in dest_root.glob(f"{step}-*"))
    dest = dest_root / f"{step}-{n}"
    logging.warning("Checkpoint at step %d is not usable: %s. Moved it to %s and falling back "
                    "to the previous checkpoint.", step, reason, dest)
    if self._is_writer:
      shutil.move(str(self.directory / str(step)), dest)
      (self._manifests / f"{step}.json").unlink(missing_ok=True)
    self._manager.reload()

  def steps(self) -> list[int]:
    """The verified steps, oldest first (unusable ones are skipped as in :meth:`restore_latest`)."""
    good = []
    for step in sorted(self._manager.all_steps()):
      reason = self._check(step)
      if reason is not None:
        self._quarantine(step, reason)
        continue
      good.append(step)
    return good

  def restore(self, step: int, template):
    """Restores ``step`` (verified against its manifest) into ``template``'s structure."""
    reason = self._check(step)
    if reason is not None:
      raise ValueError(f"checkpoint at step {step} in {self.directory} is not usable: {reason}")
    return _refill(self._manager.restore(step, args=ocp.args.StandardRestore(
        _hollow(template))), template)

  def restore_latest(self, template):
    """Restores the newest verified checkpoint into ``template``'s structure.

    Returns:
      ``(tree, step)``, or ``None`` when there is no usable checkpoint.
    """
    for step in sorted(self._manager.all_steps(), reverse=True):
      reason = self._check(step)
      if reason is not None:
        self._quarantine(step, reason)
        continue
      tree = _refill(self._manager.restore(step, args=ocp.args.StandardRestore(
          _hollow(template))), template)
      logging.info("Restored checkpoint at step %d from %s", step, self.directory)
      return tree, step
    return None
