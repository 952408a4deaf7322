"""The noisy quadratic model: exact moment dynamics against Monte Carlo, and the greedy rate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.tasks.noisy_quadratic import (Moments, NoisyQuadratic, expected_curve,
                                             expected_loss, greedy_lr, greedy_schedule,
                                             moments_step)
from tests.conftest import sample_tasks

FAMILY = NoisyQuadratic(dim=4, log10_condition=1.0, noise=0.5, init_mean=1.0, init_std=0.5)


def _simulate(family, lr_T, momentum, num_tasks, key):
  """``theta_t`` for ``num_tasks`` sampled tasks under heavy-ball SGD: ``[M, T + 1, N]``."""
  episodes = sample_tasks(family, key, num_tasks)

  def run(episode):
    def body(carry, t_lr):
      theta_N, u_N = carry
      u_N = momentum * u_N - t_lr[1] * family.noisy_gradient(theta_N, episode, t_lr[0])
      return (theta_N + u_N, u_N), theta_N + u_N

    theta_0 = episode.info["theta_0"]
    _, thetas = jax.lax.scan(body, (theta_0, jnp.zeros_like(theta_0)),
                             (jnp.arange(lr_T.shape[0]), lr_T))
    return jnp.concatenate([theta_0[None], thetas])

  return jax.jit(jax.vmap(run))(episodes)


@pytest.mark.parametrize("momentum", [0.0, 0.6])
def test_exact_moments_match_monte_carlo(momentum):
  T, M = 12, 20000
  lr_T = jnp.linspace(0.9, 0.2, T)
  theta_MTN = np.asarray(_simulate(FAMILY, lr_T, momentum, M, jax.random.key(0)), np.float64)
  h_N, s2_N = FAMILY.curvature(), FAMILY.noise_variance()
  m = FAMILY.initial_moments()
  means, variances = [m.mean_N], [m.var_N]
  for lr in lr_T:
    m = moments_step(m, lr, momentum, h_N, s2_N)
    means.append(m.mean_N)
    variances.append(m.var_N)
  mean_TN, var_TN = np.stack(means), np.stack(variances)
  # The sample mean is within 4 standard errors; the sample variance within 4 of its standard
  # errors (sqrt(2 / M) relative, for near-Gaussian iterates).
  se_mean = np.sqrt(var_TN / M)
  assert np.all(np.abs(theta_MTN.mean(0) - mean_TN) < 4 * se_mean + 1e-6)
  assert np.all(np.abs(theta_MTN.var(0) / var_TN - 1) < 4 * np.sqrt(2 / M))
  # The expected loss curve: exact vs the Monte-Carlo mean of L(theta_t), within 4 SE.
  losses_MT = 0.5 * np.sum(np.asarray(h_N) * theta_MTN**2, axis=-1)
  curve = np.asarray(expected_curve(lr_T, h_N, s2_N, FAMILY.initial_moments(),
                                    None if momentum == 0 else jnp.full(T, momentum)))
  se = losses_MT.std(0) / np.sqrt(M)
  assert np.all(np.abs(losses_MT.mean(0) - curve) < 4 * se)
  assert curve[-1] < 0.5 * curve[0]  # the schedule does learn: the test is not vacuous


def test_sgd_fast_path_equals_general_moments():
  family = NoisyQuadratic(dim=50)
  lr_T = jnp.exp(jax.random.uniform(jax.random.key(1), (200,), minval=-5.0, maxval=0.0))
  args = (family.curvature(), family.noise_variance(), family.initial_moments())
  fast = expected_curve(lr_T, *args)
  general = expected_curve(lr_T, *args, momentum_T=jnp.zeros_like(lr_T))
  np.testing.assert_allclose(fast, general, rtol=1e-5)


def test_greedy_rate_is_the_closed_form_minimiser():
  # Hand example: h = (1, 0.1), sigma^2 = s / h = (1, 10), E[theta] = (1, 1), V[theta] = 0.
  # alpha* = sum h^2 a / sum h^3 (a + sigma^2) = (1 + 0.01) / (1 * 2 + 0.001 * 11) = 1.01 / 2.011
  h_N, s2_N = jnp.array([1.0, 0.1]), jnp.array([1.0, 10.0])
  start = Moments.start(jnp.ones(2), jnp.zeros(2))
  alpha = greedy_lr(start, h_N, s2_N)
  np.testing.assert_allclose(alpha, 1.01 / 2.011, rtol=1e-6)
  next_loss = lambda lr: expected_loss(moments_step(start, lr, 0.0, h_N, s2_N), h_N)
  assert abs(float(jax.grad(next_loss)(alpha))) < 1e-5
  assert float(next_loss(alpha)) < min(float(next_loss(alpha * 0.9)),
                                       float(next_loss(alpha * 1.1)))
  # With variance already present it enters as E^2 + V, and sigma^2 only in the denominator.
  start = Moments.start(jnp.array([1.0, 2.0]), jnp.array([0.5, 1.0]))
  a_N = jnp.array([1.5, 5.0])
  np.testing.assert_allclose(greedy_lr(start, h_N, s2_N),
                             jnp.sum(h_N**2 * a_N) / jnp.sum(h_N**3 * (a_N + s2_N)), rtol=1e-6)


def test_greedy_schedule_decays_and_is_step_by_step_greedy():
  family = NoisyQuadratic(dim=100)
  h_N, s2_N, start = family.curvature(), family.noise_variance(), family.initial_moments()
  lr_T, curve = greedy_schedule(200, h_N, s2_N, start)
  np.testing.assert_allclose(lr_T[0], greedy_lr(start, h_N, s2_N), rtol=1e-6)
  m1 = moments_step(start, lr_T[0], 0.0, h_N, s2_N)
  np.testing.assert_allclose(lr_T[1], greedy_lr(m1, h_N, s2_N), rtol=1e-5)
  np.testing.assert_allclose(curve, expected_curve(lr_T, h_N, s2_N, start), rtol=1e-6)
  assert float(lr_T[0] / lr_T[100]) > 10  # short-horizon bias: a fast decay
  assert np.all(np.diff(np.asarray(curve)) < 0)  # each greedy step lowers the expected loss


def test_spectra_and_validation():
  log = NoisyQuadratic(dim=4, log10_condition=3.0)
  np.testing.assert_allclose(log.curvature(), [1.0, 0.1, 0.01, 0.001], rtol=1e-6)
  np.testing.assert_allclose(NoisyQuadratic(dim=3, spectrum="inverse").curvature(),
                             [1.0, 0.5, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(log.noise_variance() * log.curvature(), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match="spectrum"):
    NoisyQuadratic(spectrum="flat")
  episode = FAMILY.sample(jax.random.key(3))
  assert episode.info["theta_0"].shape == (4,)
  # The noise at a step is a function of (task, step): fresh across steps, shared by learners.
  c0, c0_again, c1 = (FAMILY.minimiser(episode, t) for t in (0, 0, 1))
  np.testing.assert_array_equal(c0, c0_again)
  assert not np.allclose(c0, c1)
