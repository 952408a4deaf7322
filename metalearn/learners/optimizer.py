"""Optimizers as learners: an update rule training a network of a :class:`TrainingFamily`.

An *update rule* maps meta-parameters ``theta``, its state, the gradient, the parameters and the
loss to an update (optax's ``update`` with meta-parameters in front)::

  theta           = rule.init(key)
  opt_state       = rule.init_state(theta, params, num_steps)
  updates, state  = rule.update(theta, opt_state, grads, params, loss)

Learned optimizers (:mod:`metalearn.learners.mlp_lopt`, ``lstm_lopt``, ``hyper_lopt``) are
update rules; :class:`OptaxRule` makes any optax transformation one with no meta-parameters
(the Adam and SGD baselines). :class:`OptimizerLearner` runs a rule on a training task under the
:class:`~metalearn.learners.Learner` contract, so unrolls, objectives, every estimator and the
meta-trainer apply unchanged. Inner step ``t`` draws batch ``t`` of the task's ``train`` stream
(fresh data every step), so a learner cannot score by memorising.

Learning curves (``curve``):

* ``"train"``: :math:`L_t` for :math:`t \\geq 1` is the training loss of step ``t``'s batch at
  the parameters that step starts from (what the optimizer itself sees, no extra forward pass);
  :math:`L_0` repeats :math:`L_1`. ``mean`` over it is the mean training loss along the
  trajectory.
* ``"valid"``: the loss on a fresh ``valid`` batch after each step (one more forward pass).
* ``"train_vs_reference"``: :math:`\\log L_t - \\log L^{\\text{ref}}_t`, the log-ratio to a
  reference optimizer (a tuned Adam, ``reference``) trained alongside on the *same* batches
  from the same initialisation; ``mean`` over it rewards being faster than tuned Adam on the
  very same task, on a scale shared by easy and hard tasks.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.registry import Option
from metalearn.tasks.base import TrainingFamily
from metalearn.tasks.training import TrainingTask, batch_key

CURVES = ("train", "valid", "train_vs_reference")


class UpdateRule(Protocol):
  """An optimizer with (possibly empty) meta-parameters ``theta``. ``init_state``'s
  ``num_steps``, the horizon, may be a Python int or a traced scalar: a rule keeps it as a value
  in its state, never as a shape."""
  needs_loss: bool

  def init(self, key: jax.Array) -> Any: ...
  def init_state(self, theta, params, num_steps: int) -> Any: ...
  def update(self, theta, state, grads, params, loss) -> tuple[Any, Any]: ...


@dataclasses.dataclass(frozen=True)
class OptaxRule:
  """An optax transformation as an update rule without meta-parameters."""
  tx: optax.GradientTransformation
  needs_loss = False

  def init(self, key):
    del key
    return {}

  def init_state(self, theta, params, num_steps):
    del theta, num_steps
    return self.tx.init(params)

  def update(self, theta, state, grads, params, loss):
    del theta, loss
    return self.tx.update(grads, state, params)


@dataclasses.dataclass(frozen=True)
class StepSizeRule:
  """A hand-designed direction (an optax transformation without a step size, e.g.
  ``optax.scale_by_adam()``) times a step size held in ``theta = {"lr": lr}``, so one compiled
  program evaluates a whole grid of step sizes (``vmap`` over ``theta``)."""
  direction: optax.GradientTransformation
  lr: float = 1e-3
  needs_loss = False

  def init(self, key):
    del key
    return {"lr": jnp.asarray(self.lr, jnp.float32)}

  def init_state(self, theta, params, num_steps):
    del theta, num_steps
    return self.direction.init(params)

  def update(self, theta, state, grads, params, loss):
    del loss
    direction, state = self.direction.update(grads, state, params)
    return jax.tree.map(lambda d: -theta["lr"] * d, direction), state


def adam_rule() -> StepSizeRule:
  """Adam (b1 0.9, b2 0.999, eps 1e-8) with the step size in ``theta``."""
  return StepSizeRule(optax.scale_by_adam())


def sgd_momentum_rule(momentum: float = 0.9) -> StepSizeRule:
  """SGD with heavy-ball momentum with the step size in ``theta``."""
  return StepSizeRule(optax.trace(decay=momentum))


class OptimizerState(NamedTuple):
  """Inner state: the network being trained, the rule's state, the step and the last loss."""
  params: Any
  opt_state: Any
  step: jax.Array
  loss: jax.Array
  reference: Any = ()  # (params, opt_state, loss) of the reference run, or ()


@dataclasses.dataclass(frozen=True)
class OptimizerLearner(Learner):
  """Trains ``family``'s networks with ``rule``; ``theta`` is the rule's meta-parameters.

  Attributes:
    family: a training family (its ``sample`` gives the "episodes" the learner receives).
    rule: the update rule.
    num_steps: the horizon the rule is told (its training-progress features); unrolls may be
      longer or shorter.
    curve: what the learning curve records, one of :data:`CURVES`.
    reference: the reference rule of ``curve="train_vs_reference"`` (e.g. a tuned Adam).
  """
  family: TrainingFamily
  rule: UpdateRule
  num_steps: int
  curve: str = "train"
  reference: UpdateRule | None = None
  first_step_apart = False  # every task starts from its own network: nothing shared

  def __post_init__(self):
    if self.curve not in CURVES:
      raise ValueError(f"curve must be one of {CURVES}, got {self.curve!r}")
    if (self.curve == "train_vs_reference") != (self.reference is not None):
      raise ValueError("curve='train_vs_reference' needs a reference rule (and only it does)")

  @property
  def num_inner_steps(self) -> int:
    return self.num_steps

  def describe(self) -> dict:
    return {"learner": type(self).__name__, "rule": type(self.rule).__name__,
            "num_inner_steps": self.num_steps, "curve": self.curve}

  def init(self, key):
    return self.rule.init(key)

  def _loss_grad(self, params, task, step):
    return jax.value_and_grad(self.family.loss)(
        params, self.family.batch(task, batch_key(task, "train", step), "train"))

  def init_state(self, theta, task: TrainingTask) -> OptimizerState:
    params = self.family.init_params(task)
    zero = jnp.zeros((), jnp.int32)
    loss = self.family.loss(params, self.family.batch(task, batch_key(task, "train", zero),
                                                      "train"))
    reference = ()
    if self.reference is not None:
      reference = (params, self.reference.init_state({}, params, self.num_steps), loss)
    return OptimizerState(params, self.rule.init_state(theta, params, self.num_steps), zero,
                          loss, reference)

  def step(self, theta, state: OptimizerState, task: TrainingTask) -> OptimizerState:
    loss, grads = self._loss_grad(state.params, task, state.step)
    updates, opt_state = self.rule.update(theta, state.opt_state, grads, state.params, loss)
    reference = state.reference
    if self.reference is not None:
      r_params, r_state, _ = reference
      r_loss, r_grads = self._loss_grad(r_params, task, state.step)
      r_updates, r_state = self.reference.update({}, r_state, r_grads, r_params, r_loss)
      reference = (optax.apply_updates(r_params, r_updates), r_state, r_loss)
    return OptimizerState(optax.apply_updates(state.params, updates), opt_state,
                          state.step + 1, loss, reference)

  def query_loss(self, theta, state: OptimizerState, task: TrainingTask) -> jax.Array:
    del theta
    if self.curve == "train":
      return state.loss
    if self.curve == "valid":
      return self.valid_loss(state, task)
    return jnp.log(state.loss) - jnp.log(state.reference[2])

  def valid_loss(self, state: OptimizerState, task: TrainingTask, key_offset: int = 0):
    """Loss on a fresh ``valid`` batch (batch ``step + key_offset`` of the valid stream)."""
    batch = self.family.batch(task, batch_key(task, "valid", state.step + key_offset), "valid")
    return self.family.loss(state.params, batch)

  def predict(self, theta, state: OptimizerState, x):
    del theta
    return self.family.apply(state.params, x)


# Options every learned optimizer has: the horizon it is trained on, what its curve records
# and the reference Adam step size of curve='train_vs_reference'.
LOPT_OPTIONS = dict(
    num_inner_steps=Option(100, ge=1, doc="T, the horizon the optimizer trains networks for"),
    curve=Option("train", choices=CURVES, doc="what the learning curve records"),
    reference_lr=Option(1e-3, gt=0, doc="Adam step size of curve='train_vs_reference'"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerLearnerSpec(LearnerSpec):
  """A learned optimizer: a learner training the task's network with ``rule(**options)``
  (an :class:`UpdateRule`). ``rule_options``: its options that are the rule's constructor
  arguments (the rest are :data:`LOPT_OPTIONS`)."""
  rule: Callable[..., UpdateRule]
  rule_options: tuple[str, ...] = ()

  def make_rule(self, options: dict) -> UpdateRule:
    """The rule with constructor ``options`` (lists as tuples)."""
    return self.rule(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def _build_optimizer_learner(spec_name: str):
  def build(config, family) -> OptimizerLearner:
    spec = LEARNERS.get(spec_name)
    l = config.learner
    reference = (OptaxRule(optax.adam(l.reference_lr)) if l.curve == "train_vs_reference"
                 else None)
    rule = spec.make_rule({k: l[k] for k in spec.rule_options})
    return OptimizerLearner(family, rule, l.num_inner_steps, l.curve, reference)
  return build


def register_learned_optimizer(name: str, rule: Callable[..., UpdateRule],
                               options: dict[str, Option], doc: str,
                               check: Callable | None = None) -> OptimizerLearnerSpec:
  """Registers the learned optimizer ``name`` (``learner.name``): ``rule(**{k: config.learner
  [k] for k in options})`` trains the task's network; :data:`LOPT_OPTIONS` are added."""
  return LEARNERS.register(OptimizerLearnerSpec(
      name=name, doc=doc, build=_build_optimizer_learner(name), families=("training",),
      model=None, rule=rule, rule_options=tuple(options), check=check,
      options={**LOPT_OPTIONS, **options}))
