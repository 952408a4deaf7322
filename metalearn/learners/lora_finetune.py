"""LoRA fine-tuning of a frozen decoder LM as a learner (``learner.name='lora_finetune'``).

The inner step is the step a Tinker loop takes: ``forward_backward`` with the cross-entropy
loss on a batch of the support rows, then an optimizer step on the LoRA adapters of a frozen
base model (``model.name='decoder_lm'``). The curve is the query loss after each step. Being a
learner, :func:`metalearn.unroll.unroll` runs ``k`` fine-tuning steps in one ``lax.scan`` and
every estimator of the engine applies: backprop (with the model's remat), truncated backprop,
ES and PES.

What is meta-learned (``learner.learn``; the rest stays fixed at its initial value):

* ``"init"``: the adapters' initialisation, ``theta["lora"]`` (MAML over LoRA);
* ``"lr"``: the inner learning rate's log, ``theta["log_lr"]``;
* ``"token_weights"``: a ``softplus``-positive weight per token id on the inner loss,
  ``theta["token_weights"]`` (which tokens fine-tuning learns from; CaMeLS-style weighting by
  token identity, without the context);
* ``"optimizer"``: a learned optimizer over the adapters, ``theta["optimizer"]``, when
  ``optimizer`` names one (``mlp_lopt``, ``lstm_lopt``, ...; its constructor options in
  ``lopt``): the update rule replaces Adam, learning rate included.

Episodes are token rows (:mod:`metalearn.tasks.biographies`): ``x`` input ids ``[rows, L]``, ``y``
next-token targets with ``-1`` where no loss is taken. Inner step ``t`` trains on
``rows_per_step`` support rows, cycling through them (``0``: all of them every step).
"""

import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import optax

from metalearn import models
from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.learners.sequential import chapters_read_after
from metalearn.registry import ConfigError, Option
from metalearn.tasks import Episode
from metalearn.tasks.biographies import token_loss

INNER_OPTIMIZERS = ("sgd", "adam")  # or a learned optimizer's name (``rule``)
LEARNABLE = ("init", "lr", "token_weights", "optimizer")
if TYPE_CHECKING:  # for the annotations; imported when a model is built
  from metalearn.lm import lora as lora_lib
  from metalearn.lm.model import Transformer

_ONE = 0.5413248546129181  # softplus(_ONE) = 1: every token weighs 1 at the start


def _nnx():
  """flax NNX, imported when a model is built (the registry's name lookups stay light)."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  return nnx


def _lora():
  from metalearn.lm import lora  # pylint: disable=g-import-not-at-top
  return lora


@dataclasses.dataclass(frozen=True, eq=False)
class LoRAFineTuner(Learner):
  """``k`` LoRA fine-tuning steps of a frozen base model (see the module docstring).

  Attributes:
    model: the base model (frozen; its parameters are constants of the compiled step).
    lora: rank, alpha, targets.
    num_inner_steps: k.
    optimizer: the inner optimizer, ``"sgd"`` or ``"adam"`` (``betas 0.9 / 0.95``, ``eps``
      1e-8, ``eps_root`` 1e-16), at ``exp(log_lr)``; or the name of ``rule``.
    init_lr: the inner learning rate before meta-learning.
    learn: what is meta-learned, from :data:`LEARNABLE`.
    rows_per_step: support rows per inner step (0: all).
    fixed_seed: the seed of the adapters' initialisation when ``"init"`` is not learned.
    rule: a learned optimizer (:class:`metalearn.learners.optimizer.UpdateRule`) updating the
      adapters in place of ``optimizer``, or ``None``.
    loss_fn: the query loss, ``(logits, targets) -> scalar``: the task family's ``loss`` (a
      reading chapter's weighs its forgetting probe by ``task.known_weight``).
    reference: ``loss_fn`` also takes the base model's logits on the same rows (``(logits,
      targets, reference)``; the family's ``wants_reference``), computed without adapters
      and without gradient.
  """
  model: "Transformer"
  lora: "lora_lib.LoRAConfig"
  num_inner_steps: int
  optimizer: str = "adam"
  init_lr: float = 1e-3
  learn: tuple[str, ...] = ("init", "lr")
  rows_per_step: int = 1
  fixed_seed: int = 0
  rule: Any = None
  loss_fn: Callable = token_loss
  reference: bool = False

  def __post_init__(self):
    if self.rule is None and self.optimizer not in INNER_OPTIMIZERS:
      raise ValueError(f"inner optimizer {self.optimizer!r}: one of {INNER_OPTIMIZERS} or a "
                       "learned optimizer given as rule")
    unknown = set(self.learn) - set(LEARNABLE)
    if unknown or not self.learn:
      raise ValueError(f"learn={self.learn!r}: a non-empty tuple from {LEARNABLE}")
    if self.rule is None and "optimizer" in self.learn:
      raise ValueError("learn 'optimizer' needs a learned optimizer (rule)")
    if self.rule is not None and "lr" in self.learn:
      raise ValueError("a learned optimizer sets its own step sizes: learn 'lr' is for sgd "
                       "and adam")
    graphdef, state = _nnx().split(self.model)
    object.__setattr__(self, "_graphdef", graphdef)
    object.__setattr__(self, "_base", state)
    # the parts not meta-learned, drawn once: constants of every compiled step
    fixed = self._initial(jax.random.key(self.fixed_seed))
    object.__setattr__(self, "_fixed", {k: v for k, v in fixed.items() if k not in self.learn})

  def _initial(self, key) -> dict[str, Any]:
    return {"init": _lora().init(self.model.config, self.lora, key),
            "lr": jnp.log(jnp.float32(self.init_lr)),
            "token_weights": jnp.full((self.model.config.vocab_size,), _ONE, jnp.float32),
            "optimizer": ({} if self.rule is None
                          else self.rule.init(jax.random.fold_in(key, 1)))}

  def init(self, key):
    initial = self._initial(key)
    return {name: initial[name] for name in self.learn}

  def _part(self, theta, name):
    """``theta``'s ``name`` if meta-learned, else its fixed initial value."""
    return theta[name] if name in self.learn else self._fixed[name]

  def _tx(self, lr):
    if self.optimizer == "sgd":
      return optax.sgd(lr)
    # eps_root keeps the square root differentiable where a gradient is exactly zero (every
    # A of an adapter whose B starts at zero): sqrt's derivative at 0 would make it NaN.
    return optax.adam(lr, b1=0.9, b2=0.95, eps=1e-8, eps_root=1e-16)

  def _logits(self, lora_params, x):
    adapters = _lora().Adapters(lora_params, jnp.zeros(x.shape[0], jnp.int32),
                                self.lora.scale)
    return _nnx().merge(self._graphdef, self._base)(x, adapters=adapters)[0]

  def _inner_loss(self, lora_params, x, y, token_weights):
    weights = None
    if token_weights is not None:
      weights = jax.nn.softplus(token_weights)[jnp.maximum(y, 0)]
    return token_loss(self._logits(lora_params, x), y, weights)

  def init_state(self, theta, episode: Episode):
    lora_params = self._part(theta, "init")
    if self.rule is not None:
      opt_state = self.rule.init_state(self._part(theta, "optimizer"), lora_params,
                                       self.num_inner_steps)
    else:
      opt_state = self._tx(jnp.exp(self._part(theta, "lr"))).init(lora_params)
    return {"lora": lora_params, "opt": opt_state, "t": jnp.zeros((), jnp.int32)}

  def _rows(self, episode: Episode, t):
    n = episode.support_x.shape[0]
    if not self.rows_per_step or self.rows_per_step >= n:
      return episode.support_x, episode.support_y
    rows = (t * self.rows_per_step + jnp.arange(self.rows_per_step)) % n
    return episode.support_x[rows], episode.support_y[rows]

  def step(self, theta, state, episode: Episode):
    x, y = self._rows(episode, state["t"])
    token_weights = theta["token_weights"] if "token_weights" in self.learn else None
    loss, grads = jax.value_and_grad(self._inner_loss)(state["lora"], x, y, token_weights)
    if self.rule is not None:
      updates, opt = self.rule.update(self._part(theta, "optimizer"), state["opt"], grads,
                                      state["lora"], loss)
    else:
      tx = self._tx(jnp.exp(self._part(theta, "lr")))
      updates, opt = tx.update(grads, state["opt"], state["lora"])
    return {"lora": optax.apply_updates(state["lora"], updates), "opt": opt,
            "t": state["t"] + 1}

  def _base_logits(self, x):
    return jax.lax.stop_gradient(_nnx().merge(self._graphdef, self._base)(x)[0])

  def _query_loss(self, logits, x, y):
    """``loss_fn`` on logits of rows ``x`` (with the base's on them, for ``reference``)."""
    if self.reference:
      return self.loss_fn(logits, y, self._base_logits(x))
    return self.loss_fn(logits, y)

  def query_loss(self, theta, state, episode: Episode):
    return self._query_loss(self._logits(state["lora"], episode.query_x), episode.query_x,
                            episode.query_y)

  def predict(self, theta, state, x):
    return self._logits(state["lora"], x)

  def export_files(self, theta, directory) -> dict[str, str]:
    """The adapters' initialisation (meta-learned or fixed) in PEFT's format, ``peft/``, and
    meta-learned token weights (``softplus``, one per token id), ``token_weights.npy``."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    directory = pathlib.Path(directory)
    _lora().save_peft(self._part(theta, "init"), self.lora, self.model.config,
                      directory / "peft")
    out = {"adapters (PEFT: peft.PeftModel.from_pretrained(base, DIR/peft))": "peft"}
    if "token_weights" in self.learn:
      np.save(directory / "token_weights.npy",
              np.asarray(jax.nn.softplus(theta["token_weights"])))
      out["per-token loss weights, by token id"] = "token_weights.npy"
    return out

  def reader(self, book) -> "LoRABookReader":
    """This fine-tuner reading ``book`` in order (``"reads_books"``): the same meta-parameters,
    one exercise per step, the state carried across chapters."""
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    return LoRABookReader(**{**fields, "num_inner_steps": book.num_steps})

  def describe(self) -> dict:
    return {"learner": "LoRAFineTuner", "num_inner_steps": self.num_inner_steps,
            "rank": self.lora.rank, "optimizer": self.optimizer, "learn": list(self.learn),
            "inner_lr": (self.init_lr if "lr" not in self.learn and self.rule is None
                         else None)}


@dataclasses.dataclass(frozen=True, eq=False)
class LoRABookReader(LoRAFineTuner):
  """Reads a textbook (:class:`metalearn.tasks.biography_reading.ReadingBook`) in order: inner
  step ``t`` fine-tunes on exercise ``t`` (``support_x[t]``, a few rows of one chapter) and the
  adapters and optimizer state carry across chapters. The query loss is the mean over the
  chapters read so far; :meth:`chapter_predictions` gives every chapter's (the textbook
  evaluator's forgetting matrix)."""
  mode: str = "lora"

  def _rows(self, episode: Episode, t):
    t = jnp.minimum(t, episode.support_x.shape[0] - 1)
    return episode.support_x[t], episode.support_y[t]

  def start_at(self, theta, episode: Episode, step):
    """The initial state, positioned to read exercise ``step`` next (``c * E``: chapter ``c``
    alone)."""
    return {**self.init_state(theta, episode), "t": jnp.asarray(step, jnp.int32)}

  def chapter_predictions(self, theta, state, episode: Episode) -> jax.Array:
    """Logits on every chapter's queries, ``[C, Q, Lq, V]``."""
    return jax.vmap(lambda x: self.predict(theta, state, x))(episode.query_x)

  def query_loss(self, theta, state, episode: Episode):
    """The mean query loss over the chapters read so far (before any step: the first)."""
    read = chapters_read_after(state["t"], episode)
    losses = jax.vmap(self._query_loss)(self.chapter_predictions(theta, state, episode),
                                        episode.query_x, episode.query_y)
    return jnp.sum(jnp.where(read, losses, 0.0)) / jnp.sum(read)


def _build(config, family) -> LoRAFineTuner:
  c = config.learner
  model = models.MODELS.get(config.model.name).build(config.model, family.output_dim)
  lora = _lora().LoRAConfig(rank=c.rank, alpha=c.alpha, train_attn=c.train_attn,
                             train_mlp=c.train_mlp, train_unembed=c.train_unembed)
  rule = None
  if c.optimizer not in INNER_OPTIMIZERS:
    spec = LEARNERS.get(c.optimizer)
    rule = spec.make_rule({**{k: spec.options[k].default for k in spec.rule_options},
                           **dict(c.lopt)})
  return LoRAFineTuner(model, lora, c.num_inner_steps, c.optimizer, c.init_lr,
                       tuple(c.learn), c.rows_per_step, config.seed, rule, family.loss,
                       family.wants_reference)


def _check(config) -> None:
  c = config.learner
  if not (c.train_attn or c.train_mlp or c.train_unembed):
    raise ConfigError("learner.train_attn, train_mlp and train_unembed are all False: LoRA "
                      "would train nothing; enable at least one")
  if len(set(c.learn)) != len(c.learn):
    raise ConfigError(f"learner.learn={tuple(c.learn)} names a part twice")
  from metalearn.learners import export  # pylint: disable=g-import-not-at-top
  learned = export.learned_optimizers()
  if c.optimizer not in INNER_OPTIMIZERS + tuple(learned):
    raise ConfigError(f"learner.optimizer={c.optimizer!r}: one of {INNER_OPTIMIZERS} or a "
                      f"learned optimizer {learned}")
  if c.optimizer in INNER_OPTIMIZERS:
    if "optimizer" in c.learn:
      raise ConfigError(f"learner.learn includes 'optimizer' but learner.optimizer="
                        f"{c.optimizer!r} has nothing to learn: name a learned optimizer "
                        f"{learned}")
    if c.lopt:
      raise ConfigError("learner.lopt sets a learned optimizer's options; learner.optimizer="
                        f"{c.optimizer!r} is not one")
  else:
    if "lr" in c.learn:
      raise ConfigError(f"learner.learn includes 'lr' but learner.optimizer={c.optimizer!r} "
                        "sets its own step sizes: learn 'optimizer' instead")
    rule_options = LEARNERS.get(c.optimizer).rule_options
    unknown = sorted(set(c.lopt) - set(rule_options))
    if unknown:
      raise ConfigError(f"learner.lopt keys {unknown}: {c.optimizer} takes {list(rule_options)}")


LEARNERS.register(LearnerSpec(
    name="lora_finetune", doc="LoRA fine-tuning of a frozen decoder LM, Tinker's inner step; "
    "meta-learns its initialisation, learning rate and/or per-token loss weights",
    build=_build, families=("episodes",), model="lm", targets=("tokens",), check=_check,
    provides=frozenset({"stepwise", "reads_books", "base_reference"}),
    eval_defaults=dict(baselines=("initial",)),
    options=dict(
        num_inner_steps=Option(4, ge=1, doc="k, fine-tuning steps per task"),
        rank=Option(8, ge=1, doc="LoRA rank"),
        alpha=Option(16.0, gt=0, doc="LoRA alpha (the update is scaled by alpha / rank)"),
        train_attn=Option(True, doc="adapters on q, k, v, o (Tinker's train_attn)"),
        train_mlp=Option(True, doc="adapters on gate, up, down (train_mlp)"),
        train_unembed=Option(True, doc="an adapter on the unembedding (train_unembed)"),
        optimizer=Option("adam", doc="the inner optimizer: 'sgd', 'adam' or a learned "
                         "optimizer's name ('mlp_lopt', ...)"),
        lopt=Option({}, free=True, doc="a learned optimizer's constructor options (e.g. "
                    "hidden, step_mult)"),
        init_lr=Option(1e-3, gt=0, doc="the inner learning rate before meta-learning"),
        learn=Option(("init", "lr"), choices=LEARNABLE, length=(1, None),
                     doc="what is meta-learned: the adapters' init, the inner learning rate, "
                     "per-token loss weights, a learned optimizer"),
        rows_per_step=Option(1, ge=0, doc="support rows per inner step (0: all)"))))
