"""The decoder LM's config: one frozen dataclass, picked by architecture name, read from and
written to Hugging Face ``config.json`` files.

An architecture (``llama``, ``qwen3``, ...) is a component in :data:`ARCHITECTURES`, one module
of :mod:`metalearn.lm.architectures` each: it owns its defaults (Qwen3 normalises queries and
keys per head; Llama does not) and its Hugging Face names (``model_type``, the
``architectures`` class). A config group names it and sets some sizes::

  c.lm = dict(name="qwen3", hidden_size=128, num_layers=4)

:func:`from_group` validates such a group (unknown keys, types and ranges raise
:class:`~metalearn.registry.ConfigError` naming the key) and gives an :class:`LMConfig`;
:func:`from_hf` and :func:`to_hf` convert to and from ``config.json`` dictionaries, refusing
what the model does not implement (sliding windows, stateful RoPE types, other activations)
rather than loading it wrong.
"""

import dataclasses
import json
from typing import Any, Mapping

import ml_collections

from metalearn.registry import Component, ConfigError, Option, Registry, complete

# float64 (with jax_enable_x64) is for numerical checks such as finite differences.
DTYPES = ("float32", "bfloat16", "float16", "float64")
REMAT = ("none", "full", "dots")
# RoPE types whose frequencies are a pure function of the config (HF's "dynamic" and "longrope"
# change with the longest sequence seen so far, a state we do not reproduce).
ROPE_TYPES = ("default", "linear", "llama3", "yarn")


def _rope_ok(value) -> bool:
  return isinstance(value, (dict, ml_collections.ConfigDict)) and \
      value.get("rope_type", "default") in ROPE_TYPES


# Options every architecture has; an architecture changes defaults, never the set of keys.
OPTIONS = dict(
    vocab_size=Option(256, ge=1, doc="tokens in the vocabulary (the embedding's rows)"),
    hidden_size=Option(64, ge=1, doc="the residual stream's width"),
    intermediate_size=Option(172, ge=1, doc="the SwiGLU MLP's hidden width"),
    num_layers=Option(2, ge=1, doc="decoder layers"),
    num_heads=Option(4, ge=1, doc="query heads"),
    num_kv_heads=Option(2, ge=1, doc="key/value heads (grouped-query attention; divides "
                        "num_heads)"),
    head_dim=Option(16, ge=2, doc="width of one head (even: RoPE rotates pairs)"),
    max_position_embeddings=Option(2048, ge=1, doc="the context length: positions beyond it "
                                   "are refused"),
    rope_theta=Option(10000.0, gt=0, doc="RoPE's base wavelength"),
    rope_scaling=Option({}, free=True, doc="HF rope_parameters besides rope_theta: rope_type "
                        f"one of {ROPE_TYPES} and its keys (factor, low_freq_factor, ...)"),
    rms_norm_eps=Option(1e-6, gt=0, doc="RMSNorm's epsilon"),
    attention_bias=Option(False, doc="biases on the q, k, v and o projections"),
    mlp_bias=Option(False, doc="biases on the MLP's projections"),
    tie_word_embeddings=Option(False, doc="the unembedding is the embedding's transpose"),
    initializer_range=Option(0.02, gt=0, doc="stddev of the normal initialisation"),
    bos_token_id=Option(None, optional=True, doc="beginning-of-sequence token"),
    eos_token_id=Option(None, optional=True, doc="end-of-sequence token"),
    pad_token_id=Option(None, optional=True, doc="padding token"),
    dtype=Option("float32", choices=DTYPES, doc="the activations' dtype"),
    param_dtype=Option("float32", choices=DTYPES, doc="the parameters' dtype"),
    remat=Option("none", choices=REMAT, doc="rematerialise each layer in the backward pass: "
                 "none, full (keep only its input), dots (keep matmul outputs)"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture(Component):
  """A decoder architecture.

  Attributes:
    model_type: Hugging Face's ``model_type`` in ``config.json``.
    hf_class: the ``architectures`` entry (the transformers class that loads it).
    hf_keys: ``config.json`` keys this architecture writes besides the shared ones, with
      their values (e.g. Qwen3's ``use_sliding_window: false``).
    qk_norm: an RMSNorm over each query and key head before RoPE (Qwen3).
  """
  model_type: str
  hf_class: str
  qk_norm: bool = False
  hf_keys: Mapping[str, Any] = dataclasses.field(default_factory=dict)


ARCHITECTURES: Registry[Architecture] = Registry("LM architecture", "metalearn.lm.architectures",
                                                 Architecture)


def architecture_options(**defaults) -> dict:
  """:data:`OPTIONS` with an architecture's own defaults."""
  unknown = set(defaults) - set(OPTIONS)
  if unknown:
    raise ValueError(f"unknown LM options {sorted(unknown)}")
  return {k: dataclasses.replace(o, default=defaults[k]) if k in defaults else o
          for k, o in OPTIONS.items()}


@dataclasses.dataclass(frozen=True)
class LMConfig:
  """Every size and switch of a decoder LM (see :data:`OPTIONS` for each field's meaning).

  ``rope_scaling`` is a tuple of ``(key, value)`` pairs so that the config is hashable (it is a
  static attribute of the compiled model); :attr:`rope` gives it as a dict.
  """
  arch: str = "llama"
  vocab_size: int = 256
  hidden_size: int = 64
  intermediate_size: int = 172
  num_layers: int = 2
  num_heads: int = 4
  num_kv_heads: int = 2
  head_dim: int = 16
  max_position_embeddings: int = 2048
  rope_theta: float = 10000.0
  rope_scaling: tuple = ()
  rms_norm_eps: float = 1e-6
  attention_bias: bool = False
  mlp_bias: bool = False
  tie_word_embeddings: bool = False
  initializer_range: float = 0.02
  bos_token_id: int | None = None
  eos_token_id: int | tuple | None = None
  pad_token_id: int | None = None
  dtype: str = "float32"
  param_dtype: str = "float32"
  remat: str = "none"

  def __post_init__(self):
    check(self)

  @property
  def rope(self) -> dict:
    return {"rope_type": "default", **dict(self.rope_scaling)}

  @property
  def qk_norm(self) -> bool:
    return ARCHITECTURES.get(self.arch).qk_norm

  @property
  def num_groups(self) -> int:
    """Query heads per key/value head."""
    return self.num_heads // self.num_kv_heads

  @property
  def eos_ids(self) -> tuple[int, ...]:
    e = self.eos_token_id
    return () if e is None else tuple(e) if isinstance(e, (tuple, list)) else (e,)

  def replace(self, **changes) -> "LMConfig":
    return dataclasses.replace(self, **changes)

  def num_params(self) -> int:
    d, f, h, kv, hd, v = (self.hidden_size, self.intermediate_size, self.num_heads,
                          self.num_kv_heads, self.head_dim, self.vocab_size)
    attn = d * hd * (2 * h + 2 * kv) + (hd * (h + 2 * kv) + d if self.attention_bias else 0)
    mlp = 3 * d * f + (2 * f + d if self.mlp_bias else 0)
    norms = 2 * d + (2 * hd if self.qk_norm else 0)
    return (self.num_layers * (attn + mlp + norms) + d + v * d
            + (0 if self.tie_word_embeddings else v * d))


def check(c: LMConfig) -> None:
  """Rules across keys: :class:`ConfigError` naming them."""
  ARCHITECTURES.get(c.arch, "lm.name")  # an unknown name raises, listing the registered ones
  if c.num_heads % c.num_kv_heads:
    raise ConfigError(f"lm.num_heads ({c.num_heads}) must be a multiple of lm.num_kv_heads "
                      f"({c.num_kv_heads}): grouped-query attention shares each key/value head "
                      "among num_heads / num_kv_heads query heads")
  if c.head_dim % 2:
    raise ConfigError(f"lm.head_dim ({c.head_dim}) must be even: RoPE rotates pairs of "
                      "dimensions")
  rope = c.rope
  kind = rope["rope_type"]
  if kind not in ROPE_TYPES:
    raise ConfigError(f"lm.rope_scaling.rope_type = {kind!r} is not supported (supported: "
                      f"{', '.join(ROPE_TYPES)}; HF's 'dynamic' and 'longrope' change their "
                      "frequencies with the longest sequence seen, a state this model does not "
                      "keep)")
  need = {"linear": ("factor",), "llama3": ("factor", "low_freq_factor", "high_freq_factor",
                                            "original_max_position_embeddings"),
          "yarn": ("factor",)}.get(kind, ())
  missing = [k for k in need if k not in rope]
  if missing:
    raise ConfigError(f"lm.rope_scaling for rope_type {kind!r} needs {missing}")
  if rope.get("partial_rotary_factor", 1.0) != 1.0:
    raise ConfigError("lm.rope_scaling.partial_rotary_factor != 1 is not supported by the "
                      "Llama/Qwen3 attention (it rotates whole heads)")
  for name in ("dtype", "param_dtype"):
    if getattr(c, name) not in DTYPES:
      raise ConfigError(f"lm.{name} = {getattr(c, name)!r}: one of {DTYPES}")
  if c.remat not in REMAT:
    raise ConfigError(f"lm.remat = {c.remat!r}: one of {REMAT}")


def from_group(group) -> LMConfig:
  """An :class:`LMConfig` from a config group ``dict(name=ARCH, key=value, ...)``."""
  group = ml_collections.ConfigDict(dict(group)) if isinstance(group, dict) else group
  name = group.get("name", "llama") if group is not None else "llama"
  spec = ARCHITECTURES.get(name, "lm.name")
  done = complete(group, spec.options, "lm", f"LM architecture {name!r}").to_dict()
  rope = done.pop("rope_scaling")
  eos = done.pop("eos_token_id")
  return LMConfig(arch=name, rope_scaling=tuple(sorted(dict(rope).items())),
                  eos_token_id=tuple(eos) if isinstance(eos, (list, tuple)) else eos, **done)


# config.json keys and their LMConfig fields, where the names differ.
_HF_NAMES = dict(num_hidden_layers="num_layers", num_attention_heads="num_heads",
                 num_key_value_heads="num_kv_heads")
_SHARED_HF = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "head_dim",
              "max_position_embeddings", "rms_norm_eps", "attention_bias",
              "tie_word_embeddings", "initializer_range", "bos_token_id", "eos_token_id",
              "pad_token_id")
_TORCH_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
                 "torch.float32": "float32", "torch.bfloat16": "bfloat16"}


def _by_model_type(model_type: str) -> Architecture:
  for spec in ARCHITECTURES.specs():
    if spec.model_type == model_type:
      return spec
  known = sorted(s.model_type for s in ARCHITECTURES.specs())
  raise ConfigError(f"config.json: model_type {model_type!r} is not supported (supported: "
                    f"{', '.join(known)}; a new architecture is a module in "
                    "metalearn/lm/architectures)")


def from_hf(hf: Mapping[str, Any], **overrides) -> LMConfig:
  """An :class:`LMConfig` from a ``config.json`` dictionary (``overrides``: fields to set,
  e.g. ``dtype``, ``remat``). What the model does not implement raises :class:`ConfigError`."""
  hf = dict(hf)
  spec = _by_model_type(hf.get("model_type", ""))
  act = hf.get("hidden_act", "silu")
  if act != "silu":
    raise ConfigError(f"config.json: hidden_act {act!r} is not supported (SwiGLU with silu)")
  if hf.get("use_sliding_window") or any(t != "full_attention"
                                         for t in hf.get("layer_types") or ()):
    raise ConfigError("config.json: sliding-window attention layers are not supported")
  if hf.get("pretraining_tp", 1) != 1:
    raise ConfigError("config.json: pretraining_tp != 1 is not supported")
  fields: dict[str, Any] = {}
  for key in _SHARED_HF:
    if key in hf and hf[key] is not None or key.endswith("_token_id") and key in hf:
      fields[_HF_NAMES.get(key, key)] = hf[key]
  if "mlp_bias" in hf:
    fields["mlp_bias"] = hf["mlp_bias"]
  if fields.get("head_dim") is None:
    fields["head_dim"] = hf["hidden_size"] // hf["num_attention_heads"]
  fields.setdefault("num_kv_heads", hf.get("num_attention_heads"))
  rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
  if "type" in rope:
    rope.setdefault("rope_type", rope.pop("type"))
  theta = rope.pop("rope_theta", hf.get("rope_theta", 10000.0))
  if rope.get("rope_type", "default") in ("llama3", "yarn"):
    rope.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
  if rope.get("rope_type") == "default":
    rope.pop("rope_type")
  fields["rope_theta"] = float(theta)
  fields["rope_scaling"] = tuple(sorted(rope.items()))
  if isinstance(fields.get("eos_token_id"), list):
    fields["eos_token_id"] = tuple(fields["eos_token_id"])
  dtype = _TORCH_DTYPES.get(str(hf.get("dtype", hf.get("torch_dtype", "float32"))), "float32")
  fields["param_dtype"] = dtype
  fields.update(overrides)
  known = {f.name for f in dataclasses.fields(LMConfig)}
  unknown = set(fields) - known
  if unknown:
    raise ConfigError(f"unknown LMConfig fields {sorted(unknown)}")
  return LMConfig(arch=spec.name, **fields)


def to_hf(c: LMConfig, dtype: str | None = None) -> dict:
  """The ``config.json`` dictionary transformers reads for ``c`` (``dtype``: the stored
  weights' dtype, default ``c.param_dtype``)."""
  spec = ARCHITECTURES.get(c.arch)
  inverse = {v: k for k, v in _HF_NAMES.items()}
  out = {"architectures": [spec.hf_class], "model_type": spec.model_type, "hidden_act": "silu"}
  for f in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
            "num_kv_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
            "attention_bias", "tie_word_embeddings", "initializer_range", "bos_token_id",
            "pad_token_id"):
    out[inverse.get(f, f)] = getattr(c, f)
  eos = c.eos_token_id
  out["eos_token_id"] = list(eos) if isinstance(eos, tuple) else eos
  if "mlp_bias" in spec.hf_keys or c.mlp_bias:
    out["mlp_bias"] = c.mlp_bias
  out.update({k: v for k, v in spec.hf_keys.items() if k != "mlp_bias"})
  rope = {"rope_theta": c.rope_theta, **c.rope}
  out["rope_parameters"] = rope
  # transformers 4.x reads these two; 5.x reads rope_parameters (and accepts both).
  out["rope_theta"] = c.rope_theta
  out["rope_scaling"] = None if rope["rope_type"] == "default" else dict(c.rope)
  out["dtype"] = dtype or c.param_dtype
  out["torch_dtype"] = out["dtype"]
  out["use_cache"] = True
  return out


def read_hf(path) -> dict:
  """``config.json`` at ``path`` as a dict, with a clear error for a missing or broken file."""
  try:
    with open(path) as f:
      hf = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"{path}: no config.json; an HF-format model directory holds "
                            "config.json and *.safetensors") from None
  except json.JSONDecodeError as e:
    raise ConfigError(f"{path} is not valid JSON ({e}): restore it from the model's source") \
        from None
  if not isinstance(hf, dict):
    raise ConfigError(f"{path}: expected a JSON object")
  return hf


def flops_per_token(c: LMConfig, seq_len: int) -> float:
  """Training FLOPs per token (forward + backward = 3x forward): 6 per matmul weight plus
  attention's scores and mixing (causal: half of the full square)."""
  lookup = 0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size  # not a matmul
  norms = c.num_layers * (2 * c.hidden_size + (2 * c.head_dim if c.qk_norm else 0)) + \
      c.hidden_size
  matmul = c.num_params() - lookup - norms
  attn = c.num_layers * 2 * 2 * c.num_heads * c.head_dim * seq_len / 2
  return 6 * matmul + 3 * attn
