"""Decoder language models: Llama / Qwen3 in flax NNX, sharded over a (data, fsdp, tensor)
mesh, with Hugging Face-format weights, tokenizers, KV-cache decoding and sampling."""

from metalearn.lm.config import ARCHITECTURES, LMConfig, from_group, from_hf, to_hf
from metalearn.lm.model import KVCache, Transformer, create, init_cache

__all__ = ["ARCHITECTURES", "KVCache", "LMConfig", "Transformer", "create", "from_group",
           "from_hf", "init_cache", "to_hf"]
