"""Qwen3 (dense): Llama's layers plus an RMSNorm over every query and key head before RoPE."""

from metalearn.lm.config import ARCHITECTURES, Architecture, architecture_options

ARCHITECTURES.register(Architecture(
    name="qwen3", doc="Qwen3 dense: Llama's layers with per-head q/k RMSNorm",
    model_type="qwen3", hf_class="Qwen3ForCausalLM",
    hf_keys={"use_sliding_window": False, "sliding_window": None},
    qk_norm=True,
    options=architecture_options(rms_norm_eps=1e-6, rope_theta=1000000.0)))
