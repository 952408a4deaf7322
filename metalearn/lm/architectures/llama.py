"""Llama (2, 3, 3.x): RMSNorm, RoPE (default, linear or llama3 scaling), grouped-query
attention, SwiGLU; optional biases on the attention and MLP projections."""

from metalearn.lm.config import ARCHITECTURES, Architecture, architecture_options

ARCHITECTURES.register(Architecture(
    name="llama", doc="Llama 2/3: GQA, RoPE, SwiGLU, RMSNorm",
    model_type="llama", hf_class="LlamaForCausalLM",
    hf_keys={"mlp_bias": False, "pretraining_tp": 1},
    options=architecture_options(rms_norm_eps=1e-5, rope_theta=10000.0)))
