r"""The noisy quadratic model (NQM) of Wu, Ren, Liao and Grosse 2018, "Understanding Short-Horizon
Bias in Stochastic Meta-Optimization" (ICLR; arXiv:1803.02021), section 3.

A separable quadratic in :math:`n` coordinates whose minimiser is redrawn at every step:

.. math::  \ell_t(\theta) = \tfrac12 \sum_i h_i (\theta_i - c_{t,i})^2, \qquad
           c_{t,i} \sim N(\theta^\star_i, \sigma_i^2) \text{ i.i.d. over steps},

with :math:`\theta^\star = 0` (without loss of generality). SGD on :math:`\ell_t` takes the
step :math:`\theta_{t+1} = \theta_t - \alpha_t h \odot (\theta_t - c_t)`, i.e. the true
gradient :math:`h \odot \theta_t` plus noise of variance :math:`\alpha_t^2 h_i^2 \sigma_i^2`.
What we score (the learner's query loss) is the loss at the mean minimiser,
:math:`L(\theta) = \tfrac12 \sum_i h_i \theta_i^2`: the expected :math:`\ell_t` minus its
irreducible part :math:`\tfrac12\sum_i h_i\sigma_i^2`.

**Exact dynamics** (the paper's Theorem 1). The update is linear in :math:`(\theta, c)`, so the
per-coordinate moments evolve deterministically. For SGD,

.. math::  \mathbb{E}[\theta_{t+1,i}] = (1 - \alpha_t h_i)\,\mathbb{E}[\theta_{t,i}], \qquad
           \mathbb{V}[\theta_{t+1,i}] = (1 - \alpha_t h_i)^2\,\mathbb{V}[\theta_{t,i}]
                                        + \alpha_t^2 h_i^2 \sigma_i^2,

and :math:`\mathbb{E}[L(\theta_t)] = \tfrac12 \sum_i h_i (\mathbb{E}[\theta_{t,i}]^2 +
\mathbb{V}[\theta_{t,i}])`. With heavy-ball momentum :math:`\mu_t`
(:math:`u_{t+1} = \mu_t u_t - \alpha_t g_t`, :math:`\theta_{t+1} = \theta_t + u_{t+1}`) the pair
:math:`(\theta_i, u_i)` has the transition :math:`A = \begin{pmatrix}1-\alpha h_i & \mu\\
-\alpha h_i & \mu\end{pmatrix}`, noise loading :math:`b = \alpha h_i (1, 1)`: means map by
:math:`A`, covariances by :math:`A \Sigma A^\top + \sigma_i^2 b b^\top` (:func:`moments_step`).

**Greedy step size** (the paper's Theorem 2, for SGD). The expected loss one step ahead is a
quadratic in :math:`\alpha`; with :math:`a_i = \mathbb{E}[\theta_i]^2 + \mathbb{V}[\theta_i]`,

.. math::  \frac{d}{d\alpha}\,\tfrac12\sum_i h_i\big[(1-\alpha h_i)^2 a_i
           + \alpha^2 h_i^2\sigma_i^2\big] = 0
           \;\Longrightarrow\;
           \alpha^\star_t = \frac{\sum_i h_i^2 a_i}{\sum_i h_i^3 (a_i + \sigma_i^2)} .

Once the high-curvature coordinates sit at their noise floor, the noise term
:math:`\sum_i h_i^3\sigma_i^2` dominates the denominator while the numerator is carried by the
slow coordinates' small :math:`h_i^2 a_i`: the greedy rate collapses, and the low-curvature
coordinates are never learned. That is short-horizon bias.

**Sizes.** :class:`NoisyQuadratic` defaults to :math:`n = 1000` coordinates, curvatures
log-spaced over a condition number :math:`\kappa = 10^3` (``spectrum="log"``; ``"inverse"``
gives :math:`h_i = 1/i`), noise :math:`\sigma_i^2 = s / h_i` (gradient-noise covariance
:math:`s\,H`, proportional to the curvature as for a Fisher-like noise model) and a start at
:math:`\theta_{0} = 1` (optionally with Gaussian spread ``init_std``).
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from metalearn.tasks.base import Episode, EpisodeFamily

SPECTRA = ("log", "inverse")


class Moments(NamedTuple):
  """Per-coordinate first and second moments of ``(theta, u)`` (``u``: the momentum buffer).

  Attributes:
    mean_N: :math:`\\mathbb{E}[\\theta_i]`.
    var_N: :math:`\\mathbb{V}[\\theta_i]`.
    vel_mean_N: :math:`\\mathbb{E}[u_i]`.
    vel_var_N: :math:`\\mathbb{V}[u_i]`.
    cov_N: :math:`\\mathrm{Cov}[\\theta_i, u_i]`.
  """
  mean_N: jax.Array
  var_N: jax.Array
  vel_mean_N: jax.Array
  vel_var_N: jax.Array
  cov_N: jax.Array

  @classmethod
  def start(cls, mean_N: jax.Array, var_N: jax.Array) -> "Moments":
    """Moments at :math:`t = 0`: given ``theta`` moments, a zero momentum buffer."""
    zeros = jnp.zeros_like(mean_N)
    return cls(mean_N, var_N, zeros, zeros, zeros)


@functools.partial(jax.tree_util.register_dataclass, data_fields=[],
                   meta_fields=["dim", "log10_condition", "spectrum", "noise", "init_mean",
                                "init_std"])
@dataclasses.dataclass(frozen=True)
class NoisyQuadratic(EpisodeFamily):
  """The stochastic NQM as a task family: ``sample(key)`` draws a start and a noise stream.

  The model has no data set: an episode's support/query arrays are empty, and ``info`` holds
  ``theta_0`` (``[N]``, the start) and ``noise_key`` (``uint32`` key data; the minimiser at
  inner step ``t`` is drawn from ``fold_in(noise_key, t)``, so every learner, and both runs of
  an antithetic pair, see the same noise on the same task).

  Attributes:
    dim: n, the number of coordinates.
    log10_condition: :math:`\\log_{10}\\kappa` of the ``"log"`` spectrum.
    spectrum: ``"log"`` (:math:`h_i = \\kappa^{-(i-1)/(n-1)}`) or ``"inverse"``
      (:math:`h_i = 1/i`, so :math:`\\kappa = n`).
    noise: s, with :math:`\\sigma_i^2 = s / h_i`.
    init_mean: :math:`\\mathbb{E}[\\theta_{0,i}]` (the minimiser's mean is 0).
    init_std: standard deviation of :math:`\\theta_{0,i}` (0: every task starts at the mean).
  """
  dim: int = 1000
  log10_condition: float = 3.0
  spectrum: str = "log"
  noise: float = 1.0
  init_mean: float = 1.0
  init_std: float = 0.0

  input_shape = (0,)
  output_dim = 0
  primary_metric = "loss"

  def __post_init__(self):
    if self.spectrum not in SPECTRA:
      raise ValueError(f"spectrum must be one of {SPECTRA}, got {self.spectrum!r}")
    if self.dim < 1 or self.noise < 0 or self.init_std < 0:
      raise ValueError(f"need dim >= 1, noise >= 0, init_std >= 0; got {self}")

  def curvature(self) -> jax.Array:
    """:math:`h_i`, ``[N]``, from 1 down to :math:`1/\\kappa`."""
    i_N = jnp.arange(self.dim, dtype=jnp.float32)
    if self.spectrum == "inverse":
      return 1.0 / (i_N + 1.0)
    return 10.0 ** (-self.log10_condition * i_N / max(self.dim - 1, 1))

  def noise_variance(self) -> jax.Array:
    """:math:`\\sigma_i^2 = s / h_i`, ``[N]``."""
    return self.noise / self.curvature()

  def initial_moments(self) -> Moments:
    """The moments of :math:`\\theta_0` that :meth:`sample` draws from."""
    ones_N = jnp.ones(self.dim)
    return Moments.start(self.init_mean * ones_N, self.init_std**2 * ones_N)

  def sample(self, key: jax.Array) -> Episode:
    k_init, k_noise = jax.random.split(key)
    theta_0_N = self.init_mean + self.init_std * jax.random.normal(k_init, (self.dim,))
    empty = jnp.zeros((0,))
    info = {"theta_0": theta_0_N, "noise_key": jax.random.key_data(k_noise)}
    return Episode(empty, empty, empty, empty, info)

  def minimiser(self, episode: Episode, step: jax.Array) -> jax.Array:
    """:math:`c_t \\sim N(0, \\mathrm{diag}\\,\\sigma^2)`, the noisy minimiser at inner step
    ``step``."""
    key = jax.random.fold_in(jax.random.wrap_key_data(episode.info["noise_key"]), step)
    return jnp.sqrt(self.noise_variance()) * jax.random.normal(key, (self.dim,))

  def noisy_gradient(self, theta_N: jax.Array, episode: Episode, step: jax.Array) -> jax.Array:
    """:math:`\\nabla \\ell_t(\\theta) = h \\odot (\\theta - c_t)` at inner step ``step``."""
    return self.curvature() * (theta_N - self.minimiser(episode, step))

  def loss(self, predictions: jax.Array, targets: jax.Array | None = None) -> jax.Array:
    """:math:`L(\\theta) = \\tfrac12 \\sum_i h_i (\\theta_i - \\theta^\\star_i)^2`;
    ``predictions`` is :math:`\\theta`, ``targets`` the mean minimiser (default 0)."""
    r_N = predictions if targets is None else predictions - targets
    return 0.5 * jnp.sum(self.curvature() * r_N**2)

  def metrics(self, predictions: jax.Array, targets: jax.Array | None = None) -> dict:
    return {"loss": self.loss(predictions, targets)}


def moments_step(m: Moments, lr: jax.Array, momentum: jax.Array, h_N: jax.Array,
                 s2_N: jax.Array) -> Moments:
  """One step of heavy-ball SGD (plain SGD when ``momentum`` is 0) on the moments.

  Per coordinate, :math:`(\\theta', u') = A(\\theta, u) + b\\,c` with
  :math:`A = \\begin{pmatrix}1-\\alpha h & \\mu\\\\ -\\alpha h & \\mu\\end{pmatrix}`,
  :math:`b = (\\alpha h, \\alpha h)` and :math:`c \\sim N(0, \\sigma^2)` independent of the state.
  """
  a11, a12, a21, a22 = 1.0 - lr * h_N, momentum, -lr * h_N, momentum
  noise_N = (lr * h_N) ** 2 * s2_N
  vt, vu, c = m.var_N, m.vel_var_N, m.cov_N
  return Moments(
      mean_N=a11 * m.mean_N + a12 * m.vel_mean_N,
      var_N=a11**2 * vt + 2 * a11 * a12 * c + a12**2 * vu + noise_N,
      vel_mean_N=a21 * m.mean_N + a22 * m.vel_mean_N,
      vel_var_N=a21**2 * vt + 2 * a21 * a22 * c + a22**2 * vu + noise_N,
      cov_N=a11 * a21 * vt + (a11 * a22 + a12 * a21) * c + a12 * a22 * vu + noise_N)


def expected_loss(m: Moments, h_N: jax.Array) -> jax.Array:
  """:math:`\\mathbb{E}[L(\\theta)] = \\tfrac12\\sum_i h_i (\\mathbb{E}[\\theta_i]^2 +
  \\mathbb{V}[\\theta_i])`."""
  return 0.5 * jnp.sum(h_N * (m.mean_N**2 + m.var_N))


def expected_curve(lr_T: jax.Array, h_N: jax.Array, s2_N: jax.Array, start: Moments,
                   momentum_T: jax.Array | None = None) -> jax.Array:
  """Exact expected learning curve ``[T + 1]`` (loss before learning, then after each step)
  under the step-size schedule ``lr_T`` and, if given, the momentum schedule ``momentum_T``.

  Without momentum only :math:`\\mathbb{E}[\\theta]` and :math:`\\mathbb{V}[\\theta]` are carried
  (Theorem 1 for SGD): about five times cheaper per step than :func:`moments_step`, which
  matters when a schedule is optimised through thousands of steps.
  """
  if momentum_T is None:

    def sgd(mean_var, lr):
      factor_N = 1.0 - lr * h_N
      mean_N = factor_N * mean_var[0]
      var_N = factor_N**2 * mean_var[1] + (lr * h_N) ** 2 * s2_N
      return (mean_N, var_N), 0.5 * jnp.sum(h_N * (mean_N**2 + var_N))

    _, losses_T = jax.lax.scan(sgd, (start.mean_N, start.var_N), lr_T)
  else:

    def heavy_ball(m, lr_mu):
      m = moments_step(m, lr_mu[0], lr_mu[1], h_N, s2_N)
      return m, expected_loss(m, h_N)

    _, losses_T = jax.lax.scan(heavy_ball, start, (lr_T, momentum_T))
  return jnp.concatenate([expected_loss(start, h_N)[None], losses_T])


def greedy_lr(m: Moments, h_N: jax.Array, s2_N: jax.Array) -> jax.Array:
  """The SGD step size minimising the expected loss one step ahead (Theorem 2),
  :math:`\\sum_i h_i^2 a_i / \\sum_i h_i^3 (a_i + \\sigma_i^2)` with
  :math:`a_i = \\mathbb{E}[\\theta_i]^2 + \\mathbb{V}[\\theta_i]` (momentum buffer unused)."""
  a_N = m.mean_N**2 + m.var_N
  return jnp.sum(h_N**2 * a_N) / jnp.sum(h_N**3 * (a_N + s2_N))


def greedy_schedule(num_steps: int, h_N: jax.Array, s2_N: jax.Array, start: Moments
                    ) -> tuple[jax.Array, jax.Array]:
  """The horizon-1 (greedy) SGD schedule, each rate chosen by :func:`greedy_lr` on the exact
  moments it reaches. Returns ``(lr_T, curve[T + 1])``."""

  def body(m, _):
    lr = greedy_lr(m, h_N, s2_N)
    return moments_step(m, lr, 0.0, h_N, s2_N), lr

  _, lr_T = jax.lax.scan(body, start, None, length=num_steps)
  return lr_T, expected_curve(lr_T, h_N, s2_N, start)
