"""A tiny transformer language model on procedurally generated sequences (a :class:`TrainingFamily`).

Each task is a random first-order Markov chain over ``vocab_size`` tokens: the rows of its
transition matrix are ``softmax(logits / temperature)`` with standard-normal logits, so a low
temperature gives nearly deterministic chains. Sequences start from a uniform token. The model
is a causal, pre-LayerNorm transformer (learned positions, ``num_layers`` blocks of multi-head
attention and a 4x MLP) trained by next-token cross-entropy; the best achievable loss is the
chain's entropy rate, so tasks differ in how much there is to learn.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, TaskSpec, TrainingFamily
from metalearn.tasks.training import TrainingTask, dense_init


def _layer_norm(x, p):
  mu = jnp.mean(x, -1, keepdims=True)
  var = jnp.var(x, -1, keepdims=True)
  return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


@functools.partial(jax.tree_util.register_dataclass, data_fields=[],
                   meta_fields=["vocab_size", "seq_len", "width", "num_layers", "num_heads",
                                "batch_size", "temperature"])
@dataclasses.dataclass(frozen=True)
class LanguageModelTraining(TrainingFamily):
  """Next-token prediction on random Markov chains with a small causal transformer.

  Attributes:
    vocab_size: tokens in the chain's alphabet.
    seq_len: tokens per training sequence.
    width: model width; ``num_heads`` heads of ``width // num_heads``.
    num_layers: transformer blocks.
    num_heads: attention heads.
    batch_size: sequences per batch.
    temperature: of the transition logits (lower: more predictable chains).
  """
  vocab_size: int = 16
  seq_len: int = 16
  width: int = 32
  num_layers: int = 1
  num_heads: int = 2
  batch_size: int = 32
  temperature: float = 0.5

  def __post_init__(self):
    if self.width % self.num_heads:
      raise ValueError(f"width ({self.width}) must be a multiple of num_heads "
                       f"({self.num_heads})")

  def sample(self, key: jax.Array) -> TrainingTask:
    k_init, k_data, k_chain = jax.random.split(key, 3)
    logits = jax.random.normal(k_chain, (self.vocab_size, self.vocab_size)) / self.temperature
    return TrainingTask.make(k_init, k_data, {"log_transition": jax.nn.log_softmax(logits)})

  def init_params(self, task: TrainingTask) -> dict:
    V, D, L = self.vocab_size, self.width, self.num_layers
    keys = iter(jax.random.split(task.init_rng, 4 * L + 3))
    ln = lambda: {"scale": jnp.ones(D), "bias": jnp.zeros(D)}
    params = {"embed": jax.random.normal(next(keys), (V, D)) * 0.02,
              "position": jax.random.normal(next(keys), (self.seq_len, D)) * 0.02,
              "final_norm": ln(), "head": dense_init(next(keys), D, V, 1.0)}
    for i in range(L):
      params[f"block_{i}"] = {
          "norm_1": ln(), "qkv": dense_init(next(keys), D, 3 * D, 1.0),
          "out": dense_init(next(keys), D, D, 1.0 / np.sqrt(2 * L)), "norm_2": ln(),
          "mlp_in": dense_init(next(keys), D, 4 * D, 1.0),
          "mlp_out": dense_init(next(keys), 4 * D, D, 1.0 / np.sqrt(2 * L))}
    return params

  def batch(self, task: TrainingTask, key: jax.Array, split: str) -> jax.Array:
    """Token sequences ``int32 [B, seq_len + 1]`` (inputs and shifted targets)."""
    del split  # both streams draw from the chain
    k_0, k_steps = jax.random.split(key)
    first = jax.random.randint(k_0, (self.batch_size,), 0, self.vocab_size)

    def step(tok_B, k):
      nxt = jax.random.categorical(k, task.info["log_transition"][tok_B])
      return nxt, nxt

    _, rest = jax.lax.scan(step, first, jax.random.split(k_steps, self.seq_len))
    return jnp.concatenate([first[:, None], rest.T], axis=1)

  def apply(self, params: dict, tokens_BT: jax.Array) -> jax.Array:
    """Next-token logits ``[B, T, vocab_size]``."""
    B, T = tokens_BT.shape
    H, D = self.num_heads, self.width
    x = params["embed"][tokens_BT] + params["position"][:T]
    causal = jnp.tril(jnp.ones((T, T), bool))
    for i in range(self.num_layers):
      p = params[f"block_{i}"]
      qkv = _layer_norm(x, p["norm_1"]) @ p["qkv"]["w"] + p["qkv"]["b"]
      q, k, v = jnp.split(qkv.reshape(B, T, 3, H, D // H), 3, axis=2)
      att = jnp.einsum("bqhd,bkhd->bhqk", q[:, :, 0], k[:, :, 0]) / np.sqrt(D // H)
      att = jax.nn.softmax(jnp.where(causal, att, -1e9), axis=-1)
      y = jnp.einsum("bhqk,bkhd->bqhd", att, v[:, :, 0]).reshape(B, T, D)
      x = x + y @ p["out"]["w"] + p["out"]["b"]
      h = jax.nn.gelu(_layer_norm(x, p["norm_2"]) @ p["mlp_in"]["w"] + p["mlp_in"]["b"])
      x = x + h @ p["mlp_out"]["w"] + p["mlp_out"]["b"]
    x = _layer_norm(x, params["final_norm"])
    return x @ params["head"]["w"] + params["head"]["b"]

  def loss(self, params: dict, tokens: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(self.apply(params, tokens[:, :-1]))
    return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1))


def _check(config) -> None:
  t = config.task
  if t.width % t.num_heads:
    raise ConfigError(f"task.width ({t.width}) must be a multiple of task.num_heads "
                      f"({t.num_heads})")


TASKS.register(TaskSpec(
    eval_defaults=dict(ood=("long_horizon",)),
    name="lm_training", doc="a tiny transformer LM on random Markov chains (learned "
    "optimizers)",
    build=lambda t, split: LanguageModelTraining(t.vocab_size, t.seq_len, t.width,
                                                 t.num_layers, t.num_heads, t.batch_size,
                                                 t.temperature),
    kinds=("training",), inputs="sequence", evaluator="optimizer", check=_check,
    options=dict(
        vocab_size=Option(16, ge=2, doc="tokens in the chain's alphabet"),
        seq_len=Option(16, ge=1, doc="tokens per training sequence"),
        width=Option(32, ge=1, doc="model width"),
        num_layers=Option(1, ge=1, doc="transformer blocks"),
        num_heads=Option(2, ge=1, doc="attention heads (divide width)"),
        batch_size=Option(32, ge=1, doc="sequences per batch"),
        temperature=Option(0.5, gt=0, doc="of the transition logits (lower: more "
                           "predictable chains)"))))
