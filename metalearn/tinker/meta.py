"""Meta-gradients through LM fine-tuning: a LoRA fine-tuning loop as a learner of the engine.

:class:`LoRAFineTuner` is a :class:`~metalearn.learners.Learner` whose inner step is the step a
Tinker loop takes (``forward_backward`` with ``cross_entropy`` on one batch, then an optimizer
step on the LoRA adapters of a frozen base model) and whose curve is the query loss after each
step. Its meta-parameters ``theta`` are what a meta-learner owns:

* ``theta["lora"]``: the adapters' initialisation (a meta-learned LoRA init);
* ``theta["log_lr"]``: the inner learning rate's log;
* ``theta["token_weights"]`` (with ``learn_token_weights``): a per-token-id multiplier of the
  inner loss (which tokens the fine-tuning should learn from), ``softplus``-positive.

Because it is an ordinary learner, :func:`metalearn.unroll.unroll` runs ``k`` fine-tuning steps
in one ``lax.scan``, and every estimator of the engine applies: backprop (with remat), truncated
backprop, ES and PES. An episode holds token rows ``[n, S + 1]`` with per-position weights:
``support_x`` / ``support_y`` (inner step ``t`` trains on row ``t mod n``) and ``query_x`` /
``query_y`` (the curve's loss).
"""

import dataclasses

from flax import nnx
import jax
import jax.numpy as jnp
import optax

from metalearn.learners.base import Learner
from metalearn.lm import lora as lora_lib
from metalearn.lm.model import Transformer
from metalearn.tasks import Episode

INNER_OPTIMIZERS = ("sgd", "adam")


def _token_logprobs(graphdef, base_state, adapters, tokens):
  model = nnx.merge(graphdef, base_state)
  logits, _ = model(tokens[:, :-1], adapters=adapters)
  logp = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]


@dataclasses.dataclass(frozen=True, eq=False)
class LoRAFineTuner(Learner):
  """``k`` LoRA fine-tuning steps of a frozen base model (see the module docstring).

  Attributes:
    model: the base model (frozen; its parameters are constants of the compiled step).
    lora: rank, alpha, targets.
    num_inner_steps: k.
    optimizer: the inner optimizer, ``"sgd"`` or ``"adam"`` (``betas 0.9 / 0.95``, ``eps``
      1e-8), at ``exp(theta["log_lr"])``.
    init_lr: the learning rate ``theta["log_lr"]`` starts at.
    learn_token_weights: meta-learn a weight per token id of the inner loss.
  """
  model: Transformer
  lora: lora_lib.LoRAConfig
  num_inner_steps: int
  optimizer: str = "adam"
  init_lr: float = 1e-3
  learn_token_weights: bool = False

  def __post_init__(self):
    if self.optimizer not in INNER_OPTIMIZERS:
      raise ValueError(f"inner optimizer {self.optimizer!r}: one of {INNER_OPTIMIZERS}")
    graphdef, state = nnx.split(self.model)
    object.__setattr__(self, "_graphdef", graphdef)
    object.__setattr__(self, "_base", state)

  def _tx(self, lr):
    if self.optimizer == "sgd":
      return optax.sgd(lr)
    return optax.adam(lr, b1=0.9, b2=0.95, eps=1e-8)

  def init(self, key):
    theta = {"lora": lora_lib.init(self.model.config, self.lora, key),
             "log_lr": jnp.log(jnp.float32(self.init_lr))}
    if self.learn_token_weights:  # softplus(0.5413) = 1: every token weighs 1 at the start
      theta["token_weights"] = jnp.full((self.model.config.vocab_size,), 0.5413, jnp.float32)
    return theta

  def _loss(self, lora_params, tokens, weights, token_weights=None):
    adapters = lora_lib.Adapters(lora_params, jnp.zeros(tokens.shape[0], jnp.int32),
                                 self.lora.scale)
    logp = _token_logprobs(self._graphdef, self._base, adapters, tokens)
    w = weights[:, 1:].astype(logp.dtype)
    if token_weights is not None:
      w = w * jax.nn.softplus(token_weights)[tokens[:, 1:]]
    return -jnp.sum(w * logp) / jnp.maximum(jnp.sum(weights[:, 1:]), 1.0)

  def init_state(self, theta, episode: Episode):
    lora_params = theta["lora"]
    opt_state = self._tx(jnp.exp(theta["log_lr"])).init(lora_params)
    return {"lora": lora_params, "opt": opt_state, "t": jnp.zeros((), jnp.int32)}

  def step(self, theta, state, episode: Episode):
    n = episode.support_x.shape[0]
    row = state["t"] % n
    tokens = jax.lax.dynamic_index_in_dim(episode.support_x, row, keepdims=True)
    weights = jax.lax.dynamic_index_in_dim(episode.support_y, row, keepdims=True)
    grads = jax.grad(self._loss)(state["lora"], tokens, weights, theta.get("token_weights"))
    tx = self._tx(jnp.exp(theta["log_lr"]))
    updates, opt = tx.update(grads, state["opt"], state["lora"])
    return {"lora": optax.apply_updates(state["lora"], updates), "opt": opt,
            "t": state["t"] + 1}

  def query_loss(self, theta, state, episode: Episode):
    return self._loss(state["lora"], episode.query_x, episode.query_y)

  def predict(self, theta, state, x):
    adapters = lora_lib.Adapters(state["lora"], jnp.zeros(x.shape[0], jnp.int32),
                                 self.lora.scale)
    return nnx.merge(self._graphdef, self._base)(x, adapters=adapters)[0]

  def describe(self) -> dict:
    return {"learner": "LoRAFineTuner", "num_inner_steps": self.num_inner_steps,
            "rank": self.lora.rank, "optimizer": self.optimizer,
            "learn_token_weights": self.learn_token_weights}


@dataclasses.dataclass(frozen=True)
class TextEpisodes:
  """Fine-tuning tasks from groups of token rows: task ``g`` trains on ``num_support`` rows
  of group ``g`` and is measured on its other rows (e.g. several renderings of one person's
  biography: learn from some, answer from the rest).

  Attributes:
    rows: ``[groups, rows_per_group, S + 1]`` int tokens.
    weights: per-position loss weights of the same shape (0 on padding and prompts).
    num_support: rows of a group used for inner steps; the rest are the query.
  """
  rows: jax.Array
  weights: jax.Array
  num_support: int

  def sample(self, key) -> Episode:
    g = jax.random.randint(key, (), 0, self.rows.shape[0])
    rows, weights = self.rows[g], self.weights[g]
    k = self.num_support
    return Episode(rows[:k], weights[:k], rows[k:], weights[k:], {"group": g})
