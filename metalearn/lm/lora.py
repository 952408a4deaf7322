"""LoRA adapters over a frozen decoder LM: several at once, merged, exported in PEFT's layout.

An adapter adds ``scale * x @ A @ B`` to a projection ``x @ W`` (``scale = alpha / rank``; ``A``
``[in, rank]``, ``B`` ``[rank, out]``, ``B`` starting at zero so that a new adapter changes
nothing). Targets follow Tinker's switches: ``train_attn`` (q, k, v, o), ``train_mlp`` (gate,
up, down) and ``train_unembed`` (the head).

The adapters are a plain pytree apart from the model, ``{"layers": {"q": {"a", "b"}, ...},
"head": {"a", "b"}}`` with a leading ``[layers]`` axis on per-layer targets and an
``[adapters]`` axis after it: ``N`` adapters over one base model, picked per example by an
index (:class:`Adapters`), so a population of ES/PES perturbations or a meta-batch of tasks,
each with its own adapter, runs in one compiled call. Being a pytree of arrays, an adapter
set is what the engine differentiates (a meta-learned LoRA initialisation), perturbs and
checkpoints.

:func:`save_peft` writes ``adapter_config.json`` and ``adapter_model.safetensors`` as PEFT
does (``lora_A.weight`` ``[rank, in]``, ``lora_B.weight`` ``[out, rank]``, HF module names), so
``peft.PeftModel.from_pretrained`` loads one adapter onto the transformers model.
"""

import dataclasses
import json
import math
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.lm.config import LMConfig

ATTN, MLP, HEAD = ("q", "k", "v", "o"), ("gate", "up", "down"), ("head",)
HF_NAMES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
            "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
            "down": "mlp.down_proj", "head": "lm_head"}


class LoRAError(ValueError):
  """A LoRA config or adapter file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
  """Rank, alpha and targets (Tinker's ``train_attn`` / ``train_mlp`` / ``train_unembed``)."""
  rank: int = 32
  alpha: float = 32.0
  train_attn: bool = True
  train_mlp: bool = True
  train_unembed: bool = True

  def __post_init__(self):
    if not isinstance(self.rank, int) or self.rank < 1:
      raise LoRAError(f"LoRA rank={self.rank!r}: a positive int (rank 0 trains nothing; for "
                      "full fine-tuning train the model's parameters instead)")
    if self.alpha <= 0:
      raise LoRAError(f"LoRA alpha={self.alpha}: > 0")
    if not self.targets:
      raise LoRAError("LoRA with train_attn, train_mlp and train_unembed all False trains "
                      "nothing: enable at least one")

  @property
  def targets(self) -> tuple[str, ...]:
    return ((ATTN if self.train_attn else ()) + (MLP if self.train_mlp else ()) +
            (HEAD if self.train_unembed else ()))

  @property
  def scale(self) -> float:
    return self.alpha / self.rank

  @classmethod
  def from_modules(cls, rank: int, alpha: float, modules) -> "LoRAConfig":
    """From PEFT ``target_modules`` names; the three groups must be whole."""
    names = {m.split(".")[-1] for m in modules}
    known = {n.split(".")[-1]: t for t, n in HF_NAMES.items()}
    unknown = sorted(names - set(known))
    if unknown:
      raise LoRAError(f"LoRA target modules {unknown} do not exist in a Llama/Qwen3 decoder "
                      f"(targets: {sorted(known)})")
    picked = {known[n] for n in names}
    groups = {}
    for flag, group in (("train_attn", ATTN), ("train_mlp", MLP), ("train_unembed", HEAD)):
      inside = picked & set(group)
      if inside and inside != set(group):
        raise LoRAError(f"LoRA targets {sorted(inside)} are part of {flag}'s {list(group)}: "
                        "adapt the whole group")
      groups[flag] = bool(inside)
    return cls(rank=rank, alpha=alpha, **groups)


def dims(c: LMConfig) -> dict[str, tuple[int, int]]:
  """``(in, out)`` of each target's flattened projection."""
  d, f, h, kv, hd = c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim
  return {"q": (d, h * hd), "k": (d, kv * hd), "v": (d, kv * hd), "o": (h * hd, d),
          "gate": (d, f), "up": (d, f), "down": (f, d), "head": (d, c.vocab_size)}


def init(c: LMConfig, lora: LoRAConfig, key: jax.Array, num_adapters: int = 1,
         dtype=jnp.float32) -> dict:
  """``num_adapters`` fresh adapters: ``A`` as PEFT initialises it (Kaiming-uniform with
  ``a = sqrt(5)``, i.e. uniform in ``+-1/sqrt(in)``), ``B`` zero."""
  out: dict[str, Any] = {}
  shapes = dims(c)
  for i, target in enumerate(lora.targets):
    n_in, n_out = shapes[target]
    lead = (num_adapters,) if target == "head" else (c.num_layers, num_adapters)
    bound = 1 / math.sqrt(n_in)
    a = jax.random.uniform(jax.random.fold_in(key, i), lead + (n_in, lora.rank), dtype,
                           -bound, bound)
    entry = {"a": a, "b": jnp.zeros(lead + (lora.rank, n_out), dtype)}
    if target == "head":
      out["head"] = entry
    else:
      out.setdefault("layers", {})[target] = entry
  return out


class Adapters(NamedTuple):
  """Adapters applied in a forward pass: ``params`` (see :func:`init`), ``ids`` ``[B]`` (which
  adapter each example uses) and ``scale`` (``alpha / rank``)."""
  params: dict
  ids: jax.Array
  scale: float

  def layer(self, params_of_layer):
    return Adapters(params_of_layer, self.ids, self.scale)


def delta(x: jax.Array, adapters: "Adapters | None", target: str) -> jax.Array | None:
  """``scale * x @ A[ids] @ B[ids]`` for ``x`` ``[B, S, ...in]`` (flattened), or ``None`` when
  ``target`` has no adapter."""
  if adapters is None or target not in adapters.params:
    return None
  p = adapters.params[target]
  b, s = x.shape[:2]
  flat = x.reshape(b, s, -1)
  a_sel = p["a"][adapters.ids].astype(x.dtype)
  b_sel = p["b"][adapters.ids].astype(x.dtype)
  low = jnp.einsum("bsi,bir->bsr", flat, a_sel)
  return jnp.einsum("bsr,bro->bso", low, b_sel) * jnp.asarray(adapters.scale, x.dtype)


def single(params: dict, index: int) -> dict:
  """Adapter ``index`` of a set, as a set of one (the adapter axis follows ``layers``)."""
  out = {}
  if "layers" in params:
    out["layers"] = jax.tree.map(lambda x: x[:, index:index + 1], params["layers"])
  if "head" in params:
    out["head"] = jax.tree.map(lambda x: x[index:index + 1], params["head"])
  return out


def _flat_delta(p, index, scale):
  a, b = np.asarray(p["a"][..., index, :, :], np.float32), np.asarray(p["b"][..., index, :, :],
                                                                       np.float32)
  return scale * np.einsum("...ir,...ro->...io", a, b)


def merge(model, params: dict, lora: LoRAConfig, index: int = 0):
  """A copy of ``model`` with adapter ``index`` added to its weights (``W + scale * A @ B``)."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  c = model.config
  graphdef, state = nnx.split(model)
  state = jax.tree.map(lambda x: x, state)
  layers = params.get("layers", {})
  shapes = {"q": (c.hidden_size, c.num_heads, c.head_dim),
            "k": (c.hidden_size, c.num_kv_heads, c.head_dim),
            "v": (c.hidden_size, c.num_kv_heads, c.head_dim),
            "o": (c.num_heads, c.head_dim, c.hidden_size)}
  where = {"q": ("attn", "q"), "k": ("attn", "k"), "v": ("attn", "v"), "o": ("attn", "o"),
           "gate": ("mlp", "gate"), "up": ("mlp", "up"), "down": ("mlp", "down")}
  for target, p in layers.items():
    d = _flat_delta(p, index, lora.scale)  # [L, in, out]
    d = d.reshape((c.num_layers,) + shapes.get(target, d.shape[1:]))
    var = state["layers"][where[target][0]][where[target][1]]
    var.set_value(var[...] + jnp.asarray(d, var[...].dtype))
  if "head" in params:
    d = _flat_delta({k: v[None] for k, v in params["head"].items()}, index, lora.scale)[0]
    if c.tie_word_embeddings:
      raise LoRAError("merging an unembedding adapter into a model with tied embeddings would "
                      "change its embedding too: keep the adapter separate, or untie the head")
    state["lm_head"].set_value(state["lm_head"][...] + jnp.asarray(d, state["lm_head"].dtype))
  return nnx.merge(graphdef, state)


def save_peft(params: dict, lora: LoRAConfig, c: LMConfig, directory, index: int = 0,
              base_model: str = "") -> pathlib.Path:
  """Adapter ``index`` in PEFT's layout (``adapter_config.json``,
  ``adapter_model.safetensors``)."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  tensors = {}
  prefix = "base_model.model."
  for target, p in params.get("layers", {}).items():
    a, b = np.asarray(p["a"][:, index], np.float32), np.asarray(p["b"][:, index], np.float32)
    for layer in range(c.num_layers):
      name = f"{prefix}model.layers.{layer}.{HF_NAMES[target]}"
      tensors[f"{name}.lora_A.weight"] = np.ascontiguousarray(a[layer].T)
      tensors[f"{name}.lora_B.weight"] = np.ascontiguousarray(b[layer].T)
  if "head" in params:
    p = params["head"]
    tensors[f"{prefix}lm_head.lora_A.weight"] = np.ascontiguousarray(
        np.asarray(p["a"][index], np.float32).T)
    tensors[f"{prefix}lm_head.lora_B.weight"] = np.ascontiguousarray(
        np.asarray(p["b"][index], np.float32).T)
  save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
  config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank,
            "lora_alpha": lora.alpha, "lora_dropout": 0.0, "bias": "none",
            "fan_in_fan_out": False, "use_rslora": False, "init_lora_weights": True,
            "target_modules": sorted(HF_NAMES[t].split(".")[-1] for t in lora.targets),
            "base_model_name_or_path": base_model, "inference_mode": True}
  (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
  return directory


def load_peft(directory, c: LMConfig) -> tuple[dict, LoRAConfig]:
  """A PEFT adapter directory as a set of one adapter and its config."""
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory)
  try:
    config = json.loads((directory / "adapter_config.json").read_text())
  except FileNotFoundError:
    raise LoRAError(f"{directory}: no adapter_config.json (not a PEFT adapter)") from None
  if config.get("peft_type", "LORA") != "LORA":
    raise LoRAError(f"{directory}: peft_type {config.get('peft_type')!r}, not LORA")
  if config.get("use_rslora") or config.get("use_dora"):
    raise LoRAError(f"{directory}: rsLoRA / DoRA adapters are not supported")
  lora = LoRAConfig.from_modules(config["r"], float(config["lora_alpha"]),
                                 config["target_modules"])
  try:
    tensors = load_file(str(directory / "adapter_model.safetensors"))
  except Exception as e:  # safetensors raises its own SafetensorError
    raise LoRAError(f"{directory / 'adapter_model.safetensors'} cannot be read ({e}): copy it "
                    "again") from None
  prefix = "base_model.model."
  out: dict = {}
  shapes = dims(c)
  for target in lora.targets:
    names = ([f"{prefix}lm_head"] if target == "head" else
             [f"{prefix}model.layers.{i}.{HF_NAMES[target]}" for i in range(c.num_layers)])
    a_list, b_list = [], []
    for name in names:
      try:
        a, b = tensors[f"{name}.lora_A.weight"].T, tensors[f"{name}.lora_B.weight"].T
      except KeyError as e:
        raise LoRAError(f"{directory}: adapter tensor {e.args[0]} is missing (the adapter "
                        "is for another model)") from None
      if a.shape != (shapes[target][0], lora.rank) or b.shape != (lora.rank,
                                                                   shapes[target][1]):
        raise LoRAError(f"{directory}: {name} has shapes {a.shape}/{b.shape}, the model "
                        f"needs {(shapes[target][0], lora.rank)}/"
                        f"{(lora.rank, shapes[target][1])}: the adapter is for another model")
      a_list.append(a)
      b_list.append(b)
    entry = {"a": jnp.asarray(np.stack(a_list))[:, None], "b": jnp.asarray(
        np.stack(b_list))[:, None]}
    if target == "head":
      out["head"] = {k: v[0] for k, v in entry.items()}
    else:
      out.setdefault("layers", {})[target] = entry
  return out, lora
