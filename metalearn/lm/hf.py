"""Hugging Face-format checkpoints: ``config.json`` + ``*.safetensors`` (one file, or shards
with ``model.safetensors.index.json``), float32 or bfloat16, read into and written from
:class:`~metalearn.lm.model.Transformer`.

Loading builds every parameter directly in its sharding on the mesh: each device's slice is
read from the memory-mapped files (``jax.make_array_from_callback``), one tensor at a time, so
no device ever holds a full copy of a sharded parameter. Everything is checked before a
parameter is built: every tensor the config implies is present with the shape it implies, no
tensor is left over, and the files are whole; a mismatch raises :class:`CheckpointError`
naming the file, the tensor and what to fix.

Saving writes into a temporary directory beside the destination and moves the finished files
in, so an interrupted save leaves the directory's earlier checkpoint as it was; files of an
earlier save that the new index does not name are removed only after the new ones are in place.
Other files (the tokenizer's, say) are left alone.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from typing import Callable

from flax import nnx
import jax
import numpy as np

from metalearn.lm import config as config_lib
from metalearn.lm.config import LMConfig
from metalearn.lm.model import DTYPES, Transformer

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_NP_DTYPES = {name: np.dtype(dtype) for name, dtype in DTYPES.items()}


class CheckpointError(ValueError):
  """An HF-format checkpoint is missing, corrupt, or does not match its config."""


@dataclasses.dataclass(frozen=True)
class _Tensor:
  """One of our parameters and the HF tensors it is made of.

  ``path``: its key path in the model's state; ``hf``: HF names (one per layer for a stacked
  parameter, else one); ``to_ours``/``to_hf``: layout conversions of one HF tensor.
  """
  path: tuple[str, ...]
  hf: tuple[str, ...]
  hf_shape: tuple[int, ...]
  to_ours: Callable[[np.ndarray], np.ndarray]
  to_hf: Callable[[np.ndarray], np.ndarray]
  stacked: bool


def _identity(x):
  return x


def tensors(c: LMConfig) -> list[_Tensor]:
  """Every parameter of a model of config ``c`` with its HF names and layouts."""
  d, f, h, kv, hd, v = (c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads,
                        c.head_dim, c.vocab_size)
  out = [_Tensor(("embed",), ("model.embed_tokens.weight",), (v, d), _identity, _identity,
                 False),
         _Tensor(("norm", "weight"), ("model.norm.weight",), (d,), _identity, _identity, False)]
  if not c.tie_word_embeddings:
    out.append(_Tensor(("lm_head",), ("lm_head.weight",), (v, d), np.transpose, np.transpose,
                       False))

  def proj(heads):  # HF [heads * hd, d] <-> ours [d, heads, hd]
    return (lambda w: w.reshape(heads, hd, d).transpose(2, 0, 1),
            lambda w: w.transpose(1, 2, 0).reshape(heads * hd, d))

  def bias(heads):
    return (lambda b: b.reshape(heads, hd), lambda b: b.reshape(heads * hd))

  layer = [
      (("input_norm", "weight"), "input_layernorm.weight", (d,), _identity, _identity),
      (("post_attention_norm", "weight"), "post_attention_layernorm.weight", (d,), _identity,
       _identity),
      (("attn", "q"), "self_attn.q_proj.weight", (h * hd, d), *proj(h)),
      (("attn", "k"), "self_attn.k_proj.weight", (kv * hd, d), *proj(kv)),
      (("attn", "v"), "self_attn.v_proj.weight", (kv * hd, d), *proj(kv)),
      (("attn", "o"), "self_attn.o_proj.weight", (d, h * hd),
       lambda w: w.reshape(d, h, hd).transpose(1, 2, 0),
       lambda w: w.transpose(2, 0, 1).reshape(d, h * hd)),
      (("mlp", "gate"), "mlp.gate_proj.weight", (f, d), np.transpose, np.transpose),
      (("mlp", "up"), "mlp.up_proj.weight", (f, d), np.transpose, np.transpose),
      (("mlp", "down"), "mlp.down_proj.weight", (d, f), np.transpose, np.transpose),
  ]
  if c.qk_norm:
    layer += [(("attn", "q_norm", "weight"), "self_attn.q_norm.weight", (hd,), _identity,
               _identity),
              (("attn", "k_norm", "weight"), "self_attn.k_norm.weight", (hd,), _identity,
               _identity)]
  if c.attention_bias:
    layer += [(("attn", "q_bias"), "self_attn.q_proj.bias", (h * hd,), *bias(h)),
              (("attn", "k_bias"), "self_attn.k_proj.bias", (kv * hd,), *bias(kv)),
              (("attn", "v_bias"), "self_attn.v_proj.bias", (kv * hd,), *bias(kv)),
              (("attn", "o_bias"), "self_attn.o_proj.bias", (d,), _identity, _identity)]
  if c.mlp_bias:
    layer += [(("mlp", "gate_bias"), "mlp.gate_proj.bias", (f,), _identity, _identity),
              (("mlp", "up_bias"), "mlp.up_proj.bias", (f,), _identity, _identity),
              (("mlp", "down_bias"), "mlp.down_proj.bias", (d,), _identity, _identity)]
  for path, name, shape, to_ours, to_hf in layer:
    out.append(_Tensor(("layers",) + path,
                       tuple(f"model.layers.{i}.{name}" for i in range(c.num_layers)),
                       shape, to_ours, to_hf, True))
  return out


# ---------------------------------------------------------------------------------- reading


class _Files:
  """The checkpoint's safetensors files, opened lazily (memory-mapped), with the header of
  every tensor checked against the files' sizes."""

  def __init__(self, directory: pathlib.Path):
    from safetensors import safe_open  # pylint: disable=g-import-not-at-top
    self._open = safe_open
    self.dir = directory
    index = directory / INDEX
    if index.exists():
      try:
        weight_map = json.loads(index.read_text())["weight_map"]
      except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index} is not a safetensors index ({e!r}): restore it, or "
                              "delete it if the directory holds one model.safetensors") from None
      self.where = dict(weight_map)
      files = sorted(set(self.where.values()))
    elif (directory / SINGLE).exists():
      files, self.where = [SINGLE], None
    else:
      raise CheckpointError(f"{directory}: neither {SINGLE} nor {INDEX}; an HF-format model "
                            "directory holds config.json and its safetensors weights")
    self.handles = {}
    for name in files:
      self.handles[name] = self._handle(name)
    if self.where is None:
      self.where = {k: SINGLE for k in self.handles[SINGLE].keys()}
    else:
      for name, handle in self.handles.items():
        listed = {k for k, f in self.where.items() if f == name}
        missing = listed - set(handle.keys())
        if missing:
          raise CheckpointError(f"{directory / name}: {INDEX} lists {sorted(missing)[:3]} in "
                                "it, but the file does not hold them: the shard is from another "
                                "save; restore the directory from one save")

  def _handle(self, name):
    path = self.dir / name
    if not path.exists():
      raise CheckpointError(f"{path}: listed in {INDEX} but missing; copy the whole checkpoint "
                            "directory again")
    try:
      return self._open(str(path), framework="numpy")
    except Exception as e:  # safetensors raises its own SafetensorError (an Exception)
      raise CheckpointError(f"{path} is not a readable safetensors file ({e}): it is truncated "
                            "or corrupt; copy it again from the model's source") from None

  def names(self) -> set[str]:
    return set(self.where)

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self.handles[self.where[name]].get_slice(name).get_shape())

  def dtype(self, name: str) -> str:
    return self.handles[self.where[name]].get_slice(name).get_dtype()

  def read(self, name: str) -> np.ndarray:
    try:
      return self.handles[self.where[name]].get_tensor(name)
    except Exception as e:
      raise CheckpointError(f"{self.dir / self.where[name]}: tensor {name!r} cannot be read "
                            f"({e}): the file is corrupt; copy it again") from None


def _check(c: LMConfig, files: _Files, directory) -> list[_Tensor]:
  spec = tensors(c)
  expected = {n for t in spec for n in t.hf}
  present = files.names()
  tied_head = c.tie_word_embeddings and "lm_head.weight" in present
  missing = sorted(expected - present)
  if missing:
    hint = (" (config.json says tie_word_embeddings=false, but there is no lm_head.weight: "
            "set it to true if the head is the embedding)" if missing == ["lm_head.weight"]
            else "")
    raise CheckpointError(f"{directory}: config.json implies tensors the files do not hold: "
                          f"{missing[:5]}{' ...' if len(missing) > 5 else ''}{hint}; the "
                          "config and the weights are from different models")
  extra = sorted(present - expected - ({"lm_head.weight"} if tied_head else set()))
  if extra:
    raise CheckpointError(f"{directory}: tensors config.json does not account for: "
                          f"{extra[:5]}{' ...' if len(extra) > 5 else ''} (num_hidden_layers, "
                          "attention_bias, mlp_bias or the architecture differ from the weights'"
                          " model)")
  for t in spec:
    for name in t.hf:
      got = files.shape(name)
      if got != t.hf_shape:
        raise CheckpointError(f"{directory}: {name} has shape {list(got)} but config.json "
                              f"implies {list(t.hf_shape)}: config.json does not match the "
                              "weights (check hidden_size, intermediate_size, the head counts, "
                              "head_dim and vocab_size)")
  return spec


def load(directory, mesh: jax.sharding.Mesh | None = None, **overrides) -> Transformer:
  """The model in the HF-format ``directory`` (``overrides``: :class:`LMConfig` fields such as
  ``dtype``, ``param_dtype`` or ``remat``); on ``mesh``, every parameter sharded by its
  logical axes, else on the default device."""
  directory = pathlib.Path(directory)
  c = config_lib.from_hf(config_lib.read_hf(directory / "config.json"), **overrides)
  files = _Files(directory)
  spec = _check(c, files, directory)
  abstract = nnx.eval_shape(lambda: Transformer(c, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  if mesh is not None:
    from metalearn.lm.sharding import param_shardings  # pylint: disable=g-import-not-at-top
    shardings = param_shardings(state, mesh)
  dtype = _NP_DTYPES[c.param_dtype]
  flat = dict(nnx.to_flat_state(state))
  for t in spec:
    var = flat[t.path]
    shape = var.get_value().shape
    if mesh is None:
      sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    else:
      sharding = _get(shardings, t.path).get_value()

    def piece(index, t=t, shape=shape):
      if t.stacked:
        layers = range(shape[0])[index[0]]
        return np.stack([t.to_ours(files.read(t.hf[i]))[index[1:]].astype(dtype)
                         for i in layers])
      return t.to_ours(files.read(t.hf[0]))[index].astype(dtype)

    value = jax.make_array_from_callback(shape, sharding, piece)
    var.set_value(value)
  return nnx.merge(graphdef, nnx.from_flat_state(flat))


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def read_config(directory) -> LMConfig:
  return config_lib.from_hf(config_lib.read_hf(pathlib.Path(directory) / "config.json"))


# ---------------------------------------------------------------------------------- writing


def _host(x: jax.Array) -> np.ndarray:
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def save(model: Transformer, directory, dtype: str | None = None,
         max_shard_bytes: int = 2 * 1024**3) -> pathlib.Path:
  """Writes ``model`` as an HF-format directory (``config.json`` and safetensors, sharded with
  an index when larger than ``max_shard_bytes``); ``dtype``: the stored dtype (default: the
  parameters'). Only process 0 writes; every process must call it (sharded arrays are
  gathered). Returns the directory."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  c = model.config
  dtype = dtype or c.param_dtype
  if dtype not in _NP_DTYPES:
    raise ValueError(f"dtype {dtype!r}: one of {sorted(_NP_DTYPES)}")
  np_dtype = _NP_DTYPES[dtype]
  flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  hf_tensors: dict[str, np.ndarray] = {}
  for t in tensors(c):
    value = _host(flat[t.path][...])
    if t.stacked:
      for i, name in enumerate(t.hf):
        hf_tensors[name] = np.ascontiguousarray(t.to_hf(value[i]).astype(np_dtype))
    else:
      hf_tensors[t.hf[0]] = np.ascontiguousarray(t.to_hf(value).astype(np_dtype))
  directory = pathlib.Path(directory)
  if jax.process_index() != 0:
    return directory
  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  for name in sorted(hf_tensors):
    nbytes = hf_tensors[name].nbytes
    if shards[-1] and size + nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    shards[-1][name] = hf_tensors[name]
    size += nbytes
  directory.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=".saving-", dir=directory))
  try:
    names = ([SINGLE] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    for name, shard in zip(names, shards):
      save_file(shard, str(tmp / name), metadata={"format": "pt"})
    if len(shards) > 1:
      index = {"metadata": {"total_size": sum(x.nbytes for x in hf_tensors.values())},
               "weight_map": {k: n for n, s in zip(names, shards) for k in s}}
      (tmp / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (tmp / "config.json").write_text(
        json.dumps(config_lib.to_hf(c, dtype), indent=2, sort_keys=True) + "\n")
    written = sorted(p.name for p in tmp.iterdir())
    # Weights first, then the index and config that name them.
    for name in sorted(written, key=lambda n: (n in (INDEX, "config.json"), n)):
      os.replace(tmp / name, directory / name)
    if INDEX not in written and (directory / INDEX).exists():
      (directory / INDEX).unlink()  # an earlier sharded save's: the loader would prefer it
    for old in directory.glob("model*.safetensors"):
      if old.name not in written:
        old.unlink()
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return directory
