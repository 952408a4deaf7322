"""Sinusoid regression (Finn et al. 2017, section 5.1).

Each task is ``y = A sin(x - phi)`` with ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]`` and inputs
``x ~ U[-5, 5]``; the learner sees K support points and is scored by mean squared error on
the query points.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from metalearn.registry import Option
from metalearn.tasks.base import TASKS, Episode, EpisodeFamily, TaskSpec


@functools.partial(jax.tree_util.register_dataclass, data_fields=["difficulty"],
                   meta_fields=["num_support", "num_query", "amplitude", "phase", "x_range"])
@dataclasses.dataclass(frozen=True)
class SinusoidFamily(EpisodeFamily):
  """K-shot sinusoid regression.

  Attributes:
    num_support: K, support points per task.
    num_query: query points per task.
    amplitude: ``(low, high)`` of the uniform amplitude prior.
    phase: ``(low, high)`` of the uniform phase prior.
    x_range: ``(low, high)`` of the uniform input distribution.
    difficulty: ``None`` (the priors above), or a teacher's task ``u`` in the unit cube
      (:meth:`at_task`): amplitudes ``~ U[lo, lo + u_0 (hi - lo)]``, phases
      ``~ U[lo, lo + u_1 (hi - lo)]`` and ``1 + round(u_2 (K - 1))`` support points in use:
      small, similar waves from one point at ``u = 0``, the full family at ``u = 1``.
  """
  num_support: int = 10
  num_query: int = 10
  amplitude: tuple[float, float] = (0.1, 5.0)
  phase: tuple[float, float] = (0.0, math.pi)
  x_range: tuple[float, float] = (-5.0, 5.0)
  difficulty: jax.Array | None = None

  input_shape = (1,)
  output_dim = 1
  primary_metric = "mse"

  @property
  def plot_range(self) -> tuple[float, float]:
    return self.x_range

  def target(self, info: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """The task's true function at ``x`` (``[..., 1]``)."""
    return info["amplitude"] * jnp.sin(x - info["phase"])

  task_space = ("box", 3)

  def at_task(self, task_3) -> "SinusoidFamily":
    """The family at a teacher's task ``u`` in the unit cube: the amplitude and phase ranges
    it covers and how many support points (K) a learner sees (see ``difficulty``).

    Shapes stay those of the full family, so meta-training compiles once: every episode
    has ``num_support`` support points and ``info["support_weight"]`` marks the ones in use
    (:func:`metalearn.tasks.support_loss`); the unused ones never reach the learner's loss.
    """
    return dataclasses.replace(self, difficulty=jnp.clip(jnp.asarray(task_3, jnp.float32),
                                                         0.0, 1.0))

  def sample(self, key: jax.Array) -> Episode:
    k_amp, k_phase, k_x = jax.random.split(key, 3)
    u = jnp.ones(3) if self.difficulty is None else self.difficulty
    (a_lo, a_hi), (p_lo, p_hi) = self.amplitude, self.phase
    info = {
        "amplitude": jax.random.uniform(k_amp, (), minval=a_lo,
                                        maxval=a_lo + u[0] * (a_hi - a_lo)),
        "phase": jax.random.uniform(k_phase, (), minval=p_lo, maxval=p_lo + u[1] * (p_hi - p_lo)),
    }
    n = self.num_support + self.num_query
    x_N1 = jax.random.uniform(k_x, (n, 1), minval=self.x_range[0], maxval=self.x_range[1])
    y_N1 = self.target(info, x_N1)
    k = self.num_support
    if self.difficulty is not None:
      shots = 1 + jnp.round(u[2] * (k - 1)).astype(jnp.int32)
      info["support_weight"] = (jnp.arange(k) < shots).astype(jnp.float32)
    return Episode(x_N1[:k], y_N1[:k], x_N1[k:], y_N1[k:], info)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(predictions - targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    mse = self.loss(predictions, targets)
    return {"mse": mse, "loss": mse}


def _build(t, split: str) -> SinusoidFamily:
  del split  # every split draws from the same priors
  return SinusoidFamily(num_support=t.num_support, num_query=t.num_query,
                        amplitude=tuple(t.amplitude), phase=tuple(t.phase),
                        x_range=tuple(t.x_range))


def _range(low_ok, words):
  return dict(length=2, check=lambda r: low_ok(r[0]) and r[0] <= r[1], accepts=words)


TASKS.register(TaskSpec(
    name="sinusoid", doc="K-shot sinusoid regression (Finn et al. 2017)", build=_build,
    kinds=("episodes",), target="regression", evaluator="few_shot",
    steerable={"episodes": "box"},
    eval_defaults=dict(baselines=("random_init", "pretrained")),
    options=dict(
        num_support=Option(10, ge=1, doc="K, support points per task"),
        num_query=Option(10, ge=1, doc="query points per task"),
        amplitude=Option((0.1, 5.0), doc="uniform amplitude prior",
                         **_range(lambda lo: lo >= 0, "(low, high), 0 <= low <= high")),
        phase=Option((0.0, math.pi), doc="uniform phase prior",
                     **_range(lambda lo: True, "(low, high) with low <= high")),
        x_range=Option((-5.0, 5.0), length=2, check=lambda r: r[0] < r[1],
                       accepts="(low, high) with low < high", doc="uniform input range"))))
