"""The step-size-schedule learner: step-t rates by value, counters carried by truncated
estimators, and the exact expected curve."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn import estimators, objectives
from metalearn.learners.schedule import ScheduleLearner, ScheduleState, minimise_expected
from metalearn.tasks.noisy_quadratic import NoisyQuadratic, expected_curve
from metalearn.unroll import unroll

FAMILY = NoisyQuadratic(dim=3, log10_condition=1.0, init_std=0.3)
T = 6
RATES = jnp.array([0.5, 0.05, 0.3, 0.02, 0.4, 0.1])  # distinct: a wrong index shows


def _learner(**kw):
  learner = ScheduleLearner(FAMILY, T, **kw)
  return learner, learner.from_learning_rates(RATES)


def test_step_uses_the_step_t_rate():
  learner, theta = _learner()
  episode = FAMILY.sample(jax.random.key(0))
  theta_N = jnp.array([1.0, -2.0, 0.5])
  for t in range(T):
    new = learner.step(theta, ScheduleState(theta_N, jnp.int32(t)), episode)
    c_N = FAMILY.minimiser(episode, t)
    expected = theta_N - RATES[t] * FAMILY.curvature() * (theta_N - c_N)
    np.testing.assert_allclose(new.theta_N, expected, rtol=1e-6)
    assert int(new.step) == t + 1
  # Past the end of the schedule the last rate is reused.
  np.testing.assert_allclose(learner.learning_rate(theta, jnp.int32(T + 3)), RATES[-1],
                             rtol=1e-6)


def test_knots_interpolate_log_rates():
  learner = ScheduleLearner(FAMILY, 11, "knots", num_knots=3)  # knots at steps 0, 5, 10
  theta = {"log_lr": jnp.log(jnp.array([1.0, 0.01, 0.1]))}
  rates = learner.learning_rates(theta)
  np.testing.assert_allclose(np.asarray(rates)[[0, 5, 10]], [1.0, 0.01, 0.1], rtol=1e-5)
  np.testing.assert_allclose(rates[2], np.exp(np.log(0.01) * 2 / 5), rtol=1e-5)
  for t in (0, 3, 7, 10):
    np.testing.assert_allclose(learner.learning_rate(theta, jnp.int32(t)), rates[t], rtol=1e-6)
  with pytest.raises(ValueError, match="parameterisation"):
    ScheduleLearner(FAMILY, 11, "spline")


def test_truncated_backprop_carries_the_counter_and_is_greedy():
  learner, theta = _learner()
  est = estimators.truncated_backprop(learner, FAMILY, objectives.final_loss, 2, T, 1)
  state = est.init(jax.random.key(0), theta)
  episodes = state.episodes
  estimate = jax.jit(est.estimate)
  for t in range(T):
    grads, state, _ = estimate(theta, state, jax.random.key(t + 1))
    # Truncation 1 + final loss: the segment's loss depends on alpha_t alone (greedy).
    nonzero = np.flatnonzero(np.asarray(grads["log_lr"]))
    assert nonzero.tolist() == [t]
    if t == 2:  # mid-run: the carried iterate equals a straight 3-step unroll, noise and all
      run = lambda ep: unroll(learner, theta, learner.init_state(theta, ep), ep, 3)[0]
      straight = jax.vmap(run)(episodes)
      np.testing.assert_allclose(state.inner_state.theta_N, straight.theta_N, rtol=1e-5)
      np.testing.assert_array_equal(state.inner_state.step, [3, 3])
  # After T steps the tasks restart: the next segment differentiates alpha_0 again.
  assert np.asarray(state.step).tolist() == [0, 0]
  grads, state, _ = estimate(theta, state, jax.random.key(99))
  assert np.flatnonzero(np.asarray(grads["log_lr"])).tolist() == [0]
  np.testing.assert_array_equal(state.inner_state.step, [1, 1])


def test_pes_carries_the_counter_across_segments():
  learner, theta = _learner(parameterisation="knots", num_knots=3)
  est = estimators.truncated_es(learner, FAMILY, objectives.final_loss, 3, T, 2, 0.1,
                                persistent=True, stagger=True)
  state = est.init(jax.random.key(0), theta)
  estimate = jax.jit(est.estimate)
  for call in range(4):
    # Each run's own counter equals the estimator's bookkeeping of its pair (staggered).
    np.testing.assert_array_equal(state.inner.step, np.tile(np.asarray(state.step), 2))
    before = np.asarray(state.step)
    _, state, _ = estimate(theta, state, jax.random.key(call))
    after = np.where(before + 2 >= T, 0, before + 2)
    np.testing.assert_array_equal(state.step, after)
  assert len(set(np.asarray(state.step).tolist())) > 1  # the pairs really are staggered


def test_expected_curve_and_exact_minimisation():
  learner, theta = _learner()
  np.testing.assert_allclose(
      learner.expected_curve(theta),
      expected_curve(RATES, FAMILY.curvature(), FAMILY.noise_variance(),
                     FAMILY.initial_moments()), rtol=1e-6)
  fitted, values = minimise_expected(learner, objectives.final_loss, 50, optax.adam(0.05),
                                     theta)
  assert float(values[-1]) < float(values[0])
  assert float(learner.expected_curve(fitted)[-1]) < float(learner.expected_curve(theta)[-1])
