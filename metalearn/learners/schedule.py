r"""A meta-learned step-size schedule: SGD on the noisy quadratic model with rate :math:`\alpha_t`.

The meta-parameters are the log learning rates of a :math:`T`-step schedule, either one per
inner step (``parameterisation="per_step"``, :math:`\alpha_t = e^{\phi_t}`, the free schedule
of Wu et al. 2018) or ``num_knots`` values at evenly spaced steps
:math:`\tau_k = k (T - 1) / (K - 1)` with :math:`\log\alpha_t` interpolated linearly between
them (``"knots"``: few parameters, for evolution strategies). The inner step is

.. math::  \theta_{t+1} = \theta_t - \alpha_t\, h \odot (\theta_t - c_t),

with :math:`c_t` the task's noisy minimiser at step :math:`t`
(:class:`metalearn.tasks.noisy_quadratic.NoisyQuadratic`). The inner state carries the step
counter, so a truncated estimator that resumes a run mid-way indexes the schedule (and the
noise stream) where the run stands; steps past the end reuse :math:`\alpha_{T-1}`.

Because the NQM's moments are exact (:func:`~metalearn.tasks.noisy_quadratic.expected_curve`),
:meth:`ScheduleLearner.expected_curve` gives the *expected* learning curve of a schedule without
sampling: any meta-objective of it can be minimised exactly, and any learned schedule scored
without noise. Example::

  family = NoisyQuadratic(dim=100)
  learner = ScheduleLearner(family, num_steps=500)
  theta = learner.init(key)                              # {"log_lr": [500]}
  curve = learner.expected_curve(theta)                  # [501], exact
  _, sampled = unroll(learner, theta, learner.init_state(theta, ep), ep, 500)  # one run
"""

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metalearn.learners.base import Learner
from metalearn.tasks.base import Episode
from metalearn.tasks.noisy_quadratic import NoisyQuadratic, expected_curve

PARAMETERISATIONS = ("per_step", "knots")


class ScheduleState(NamedTuple):
  """Inner state: the iterate and how many inner steps have been taken."""
  theta_N: jax.Array
  step: jax.Array  # int32 scalar


@dataclasses.dataclass(frozen=True)
class ScheduleLearner(Learner):
  """SGD on a :class:`NoisyQuadratic` with a meta-learned step-size schedule.

  Attributes:
    family: the NQM whose episodes it trains on.
    num_steps: T, the schedule's length.
    parameterisation: ``"per_step"`` (T log rates) or ``"knots"`` (``num_knots`` log rates,
      linearly interpolated).
    num_knots: K for ``"knots"`` (at least 2).
    init_lr: the constant rate :meth:`init` starts from.
  """
  family: NoisyQuadratic
  num_steps: int
  parameterisation: str = "per_step"
  num_knots: int = 11
  init_lr: float = 0.1

  def __post_init__(self):
    if self.parameterisation not in PARAMETERISATIONS:
      raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got "
                       f"{self.parameterisation!r}")
    if self.num_steps < 1 or (self.parameterisation == "knots" and self.num_knots < 2):
      raise ValueError(f"need num_steps >= 1 and num_knots >= 2, got {self.num_steps}, "
                       f"{self.num_knots}")
    if self.init_lr <= 0:
      raise ValueError(f"init_lr must be positive, got {self.init_lr}")

  @property
  def num_inner_steps(self) -> int:
    return self.num_steps

  @property
  def num_params(self) -> int:
    return self.num_steps if self.parameterisation == "per_step" else self.num_knots

  def init(self, key: jax.Array) -> dict:
    del key
    return {"log_lr": jnp.full(self.num_params, jnp.log(self.init_lr), jnp.float32)}

  def from_learning_rates(self, lr_T: jax.Array) -> dict:
    """Meta-parameters whose schedule is ``lr_T`` (``[T]``; sampled at the knots for
    ``"knots"``)."""
    log_T = jnp.log(jnp.asarray(lr_T, jnp.float32))
    if self.parameterisation == "per_step":
      return {"log_lr": log_T}
    return {"log_lr": jnp.interp(self._knot_steps(), jnp.arange(self.num_steps), log_T)}

  def _knot_steps(self) -> jax.Array:
    return jnp.linspace(0.0, self.num_steps - 1, self.num_knots)

  def log_learning_rates(self, theta: dict) -> jax.Array:
    """:math:`\\log\\alpha_t` for ``t = 0..T-1``, ``[T]``."""
    log_lr = theta["log_lr"]
    if self.parameterisation == "per_step":
      return log_lr
    return jnp.interp(jnp.arange(self.num_steps, dtype=jnp.float32), self._knot_steps(), log_lr)

  def learning_rates(self, theta: dict) -> jax.Array:
    """The schedule :math:`\\alpha_0, \\dots, \\alpha_{T-1}`, ``[T]``."""
    return jnp.exp(self.log_learning_rates(theta))

  def learning_rate(self, theta: dict, step: jax.Array) -> jax.Array:
    """:math:`\\alpha_t` at inner step ``step`` (clamped to the schedule's last entry); reads
    one entry (or interpolates at one point) rather than building the whole schedule."""
    t = jnp.minimum(step, self.num_steps - 1)
    if self.parameterisation == "per_step":
      return jnp.exp(theta["log_lr"][t])
    return jnp.exp(jnp.interp(t.astype(jnp.float32), self._knot_steps(), theta["log_lr"]))

  # --- the Learner contract -------------------------------------------------------------------
  def init_state(self, theta: dict, episode: Episode) -> ScheduleState:
    del theta
    return ScheduleState(episode.info["theta_0"], jnp.zeros((), jnp.int32))

  def step(self, theta: dict, state: ScheduleState, episode: Episode) -> ScheduleState:
    grad_N = self.family.noisy_gradient(state.theta_N, episode, state.step)
    lr = self.learning_rate(theta, state.step)
    return ScheduleState(state.theta_N - lr * grad_N, state.step + 1)

  def query_loss(self, theta: dict, state: ScheduleState, episode: Episode) -> jax.Array:
    del theta, episode
    return self.family.loss(state.theta_N)

  def predict(self, theta: dict, state: ScheduleState, x: jax.Array) -> jax.Array:
    del theta, x
    return state.theta_N

  # --- exact expectations ---------------------------------------------------------------------
  def expected_curve(self, theta: dict) -> jax.Array:
    """The exact expected learning curve ``[T + 1]`` of the schedule (no sampling)."""
    f = self.family
    return expected_curve(self.learning_rates(theta), f.curvature(), f.noise_variance(),
                          f.initial_moments())


def minimise_expected(learner: ScheduleLearner, objective: Callable[[jax.Array], jax.Array],
                      num_iterations: int, optimizer: optax.GradientTransformation,
                      theta: dict | None = None) -> tuple[dict, jax.Array]:
  """Minimises ``objective(learner.expected_curve(theta))`` exactly (no sampling noise) by
  ``num_iterations`` optimizer steps in one compiled ``lax.scan``.

  Returns ``(theta, objective_values[num_iterations])`` (the value before each step).
  """
  theta = learner.init(None) if theta is None else theta
  value_and_grad = jax.value_and_grad(lambda th: objective(learner.expected_curve(th)))

  def body(carry, _):
    th, opt_state = carry
    value, grads = value_and_grad(th)
    updates, opt_state = optimizer.update(grads, opt_state, th)
    return (optax.apply_updates(th, updates), opt_state), value

  @jax.jit
  def run(th):
    (th, _), values = jax.lax.scan(body, (th, optimizer.init(th)), None, length=num_iterations)
    return th, values

  return run(theta)
