"""Multimodal few-shot regression: each task is drawn from one of several function families.

After the multimodal benchmark of Vuorio et al. 2019 (MMAML, section 5.1): a task first draws
its *mode* uniformly from ``modes``, then that mode's parameters, and the learner sees K noisy
points of ``y = f(x) + noise`` with ``x ~ U[x_range]``. One initialisation must serve functions
of different shapes, which a single-mode family such as ``sinusoid`` never asks of it. The
priors (ours; the paper's text gives the modes, not every range) are:

==========  =========================  ==========================================
mode        function                   parameters
==========  =========================  ==========================================
sinusoid    ``a sin(x - c)``           ``a ~ U[0.1, 5]``, ``c ~ U[0, pi]``
line        ``a x + b``                ``a, b ~ U[-3, 3]``
quadratic   ``a (x - c)^2 + b``        ``|a| ~ U[0.02, 0.15]`` of either sign, ``b, c ~ U[-3, 3]``
l1          ``a |x - c| + b``          ``|a| ~ U[0.2, 1]`` of either sign, ``b, c ~ U[-3, 3]``
tanh        ``a tanh(x - c) + b``      ``a, b, c ~ U[-3, 3]``
==========  =========================  ==========================================

A teacher can steer it (``task_space = ("discrete", len(modes))``): arm ``i`` draws every task
from mode ``modes[i]``, so a learning-progress teacher chooses which kind of function to
practise next.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from metalearn.registry import Option
from metalearn.tasks.base import TASKS, Episode, EpisodeFamily, TaskSpec

# mode -> (function of (a, b, c, x), |a| range, a of either sign, b range, c range)
_MODES = {
    "sinusoid": (lambda a, b, c, x: a * jnp.sin(x - c), (0.1, 5.0), False, (0.0, 0.0),
                 (0.0, math.pi)),
    "line": (lambda a, b, c, x: a * x + b, (-3.0, 3.0), False, (-3.0, 3.0), (0.0, 0.0)),
    "quadratic": (lambda a, b, c, x: a * jnp.square(x - c) + b, (0.02, 0.15), True,
                  (-3.0, 3.0), (-3.0, 3.0)),
    "l1": (lambda a, b, c, x: a * jnp.abs(x - c) + b, (0.2, 1.0), True, (-3.0, 3.0),
           (-3.0, 3.0)),
    "tanh": (lambda a, b, c, x: a * jnp.tanh(x - c) + b, (-3.0, 3.0), False, (-3.0, 3.0),
             (-3.0, 3.0)),
}
MODES = tuple(_MODES)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["arm"],
                   meta_fields=["modes", "num_support", "num_query", "noise_std", "x_range"])
@dataclasses.dataclass(frozen=True)
class MultimodalRegressionFamily(EpisodeFamily):
  """K-shot regression over a mixture of function families.

  Attributes:
    modes: the function families tasks are drawn from (names from :data:`MODES`).
    num_support: K, support points per task.
    num_query: query points per task.
    noise_std: standard deviation of the Gaussian noise on every observed ``y`` (support and
      query).
    x_range: ``(low, high)`` of the uniform input distribution.
    arm: ``None`` (modes drawn uniformly), or a teacher's arm (:meth:`at_task`): every task
      from ``modes[arm]``.
  """
  modes: tuple[str, ...] = MODES
  num_support: int = 10
  num_query: int = 10
  noise_std: float = 0.3
  x_range: tuple[float, float] = (-5.0, 5.0)
  arm: jax.Array | None = None

  input_shape = (1,)
  output_dim = 1
  primary_metric = "mse"

  def __post_init__(self):
    unknown = [m for m in self.modes if m not in _MODES]
    if not self.modes or unknown:
      raise ValueError(f"modes {self.modes!r}: use a non-empty tuple of {MODES}")

  @property
  def plot_range(self) -> tuple[float, float]:
    return self.x_range

  @property
  def task_space(self) -> tuple[str, int]:
    """A teacher's arms: one per mode."""
    return ("discrete", len(self.modes))

  def at_task(self, arm: jax.Array) -> "MultimodalRegressionFamily":
    """Every task from mode ``modes[arm]`` (a teacher's choice; same shapes)."""
    return dataclasses.replace(
        self, arm=jnp.clip(jnp.asarray(arm, jnp.int32), 0, len(self.modes) - 1))

  def target(self, info: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """The task's noiseless function at ``x`` (``[..., 1]``); ``info["mode"]`` indexes
    ``modes``."""
    a, b, c, mode = info["a"], info["b"], info["c"], info["mode"]
    out = jnp.zeros(jnp.broadcast_shapes(jnp.shape(x), jnp.shape(a)))
    for i, name in enumerate(self.modes):
      out = jnp.where(mode == i, _MODES[name][0](a, b, c, x), out)
    return out

  def sample(self, key: jax.Array) -> Episode:
    k_mode, k_a, k_sign, k_b, k_c, k_x, k_noise = jax.random.split(key, 7)
    table = jnp.asarray([(*m[1], float(m[2]), *m[3], *m[4])
                         for m in (_MODES[n] for n in self.modes)])  # [modes, 7]
    mode = (jax.random.randint(k_mode, (), 0, len(self.modes)) if self.arm is None
            else self.arm)
    a_lo, a_hi, signed, b_lo, b_hi, c_lo, c_hi = table[mode]
    sign = jnp.where(signed > 0, jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0), 1.0)
    info = {"mode": mode,
            "a": sign * jax.random.uniform(k_a, (), minval=a_lo, maxval=a_hi),
            "b": jax.random.uniform(k_b, (), minval=b_lo, maxval=b_hi),
            "c": jax.random.uniform(k_c, (), minval=c_lo, maxval=c_hi)}
    n, k = self.num_support + self.num_query, self.num_support
    x_N1 = jax.random.uniform(k_x, (n, 1), minval=self.x_range[0], maxval=self.x_range[1])
    y_N1 = self.target(info, x_N1) + self.noise_std * jax.random.normal(k_noise, (n, 1))
    return Episode(x_N1[:k], y_N1[:k], x_N1[k:], y_N1[k:], info)

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(predictions - targets))

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    mse = self.loss(predictions, targets)
    return {"mse": mse, "loss": mse}


def _build(t, split: str) -> MultimodalRegressionFamily:
  del split  # every split draws from the same priors
  return MultimodalRegressionFamily(modes=tuple(t.modes), num_support=t.num_support,
                                    num_query=t.num_query, noise_std=t.noise_std,
                                    x_range=tuple(t.x_range))


TASKS.register(TaskSpec(
    name="multimodal_regression", doc="K-shot regression over a mixture of function families "
    "(sinusoid, line, quadratic, l1, tanh; after Vuorio et al. 2019)", build=_build,
    kinds=("episodes",), target="regression", evaluator="few_shot",
    steerable={"episodes": "discrete"},
    eval_defaults=dict(baselines=("random_init", "pretrained")),
    options=dict(
        modes=Option(MODES, choices=MODES, length=(1, None), doc="function families drawn"),
        num_support=Option(10, ge=1, doc="K, support points per task"),
        num_query=Option(10, ge=1, doc="query points per task"),
        noise_std=Option(0.3, ge=0, doc="Gaussian noise on observed y"),
        x_range=Option((-5.0, 5.0), length=2, check=lambda r: r[0] < r[1],
                       accepts="(low, high) with low < high", doc="uniform input range"))))
