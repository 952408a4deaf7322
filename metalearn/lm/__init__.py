"""Decoder language models: Llama / Qwen3 in flax NNX, sharded over a (data, fsdp, tensor)
mesh, with Hugging Face-format weights, tokenizers, KV-cache decoding and sampling.

The names below are imported on first use, so that modules needing only the corpus or the
config (task families, config checks) do not import flax.
"""

import importlib

_NAMES = {"ARCHITECTURES": "config", "LMConfig": "config", "from_group": "config",
          "from_hf": "config", "to_hf": "config", "KVCache": "model", "Transformer": "model",
          "create": "model", "init_cache": "model"}

__all__ = sorted(_NAMES)


def __getattr__(name):
  if name in _NAMES:
    return getattr(importlib.import_module(f"metalearn.lm.{_NAMES[name]}"), name)
  try:  # a submodule: metalearn.lm.hf, metalearn.lm.lora, ...
    return importlib.import_module(f"metalearn.lm.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"metalearn.lm.{name}":
      raise
    raise AttributeError(f"module 'metalearn.lm' has no attribute {name!r}") from None
