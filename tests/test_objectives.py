import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import objectives

FAST = jnp.array([4.0, 1.0, 1.0, 1.0])  # learns at once
SLOW = jnp.array([4.0, 4.0, 4.0, 1.0])  # learns only at the last step


def test_values():
  assert float(objectives.final_loss(FAST)) == 1.0
  assert float(objectives.mean_loss(SLOW)) == 3.0
  assert float(objectives.mean_all_loss(SLOW)) == 13.0 / 4  # the starting loss counts too
  np.testing.assert_allclose(objectives.progress(FAST), -0.75)
  np.testing.assert_allclose(objectives.progress(SLOW), -0.25)


def test_summed_one_step_improvement_telescopes_but_progress_rewards_speed():
  summed = lambda c: jnp.sum(c[:-1] - c[1:])
  assert float(summed(FAST)) == float(summed(SLOW)) == float(FAST[0] - FAST[-1])
  assert objectives.progress(FAST) < objectives.progress(SLOW)  # lower is better
  assert objectives.final_loss(FAST) == objectives.final_loss(SLOW)


def test_progress_gives_no_credit_for_a_worse_start():
  grad = jax.grad(lambda c: objectives.progress(c))(FAST)
  assert float(grad[0]) == 0.0 and bool(jnp.all(grad[1:] > 0))


def test_batched_curves_and_unknown_name():
  curves = jnp.stack([FAST, SLOW])
  assert objectives.progress(curves).shape == (2,)
  with pytest.raises(ValueError, match="objective 'speed' is not a registered objective. "
                     "Registered: discounted_progress, final, late_mean, log_progress, mean, "
                     "mean_all, progress"):
    objectives.get_objective("speed")


def test_progress_with_a_reference_loss():
  # L_ref = 0.5: FAST removes 3 of the reachable 3.5 at every step.
  np.testing.assert_allclose(objectives.progress(FAST, reference_loss=0.5), -3.0 / 3.5, rtol=1e-6)
  bound = objectives.get_objective("progress", reference_loss=0.5, discount=0.3)  # discount ignored
  np.testing.assert_allclose(bound(SLOW), -(0 + 0 + 3.0) / 3 / 3.5, rtol=1e-6)  # float32


def test_a_start_at_or_below_the_reference_keeps_the_sign_and_stays_finite():
  improving, regressing = jnp.array([0.3, 0.2, 0.1]), jnp.array([0.3, 0.4, 0.5])
  better, worse = (objectives.progress(c, reference_loss=0.5) for c in (improving, regressing))
  assert bool(jnp.isfinite(better) & jnp.isfinite(worse))
  assert float(better) < 0 < float(worse)  # improving is still rewarded (lower is better)
  at_floor = objectives.progress(jnp.array([0.5, 0.4]), reference_loss=0.5)
  assert bool(jnp.isfinite(at_floor)) and float(at_floor) < 0
  zero = jnp.array([1.0, 0.0, 0.0])  # an exact fit: finite, and the best log progress
  assert bool(jnp.isfinite(objectives.log_progress(zero)))
  assert bool(jnp.isfinite(objectives.discounted_progress(jnp.array([0.0, 0.0]))))


def test_log_progress_by_hand():
  np.testing.assert_allclose(objectives.log_progress(FAST), -np.log(4.0), rtol=1e-6)
  np.testing.assert_allclose(objectives.log_progress(SLOW), -np.log(4.0) / 3, rtol=1e-6)
  curve = jnp.array([1.0, 0.1, 0.01])  # two orders of magnitude, one per step
  np.testing.assert_allclose(objectives.log_progress(curve), -1.5 * np.log(10.0), rtol=1e-6)
  assert float(jax.grad(objectives.log_progress)(curve)[0]) == 0.0


def test_discounted_progress_by_hand_and_its_telescoping_limit():
  gamma = 0.5  # weights 1, 0.5, 0.25 (sum 1.75); FAST gains 3/4 at step 1, SLOW at step 3
  np.testing.assert_allclose(objectives.discounted_progress(FAST, gamma), -0.75 / 1.75)
  np.testing.assert_allclose(objectives.discounted_progress(SLOW, gamma), -0.75 * 0.25 / 1.75)
  # gamma = 1: the summed one-step improvement, (L_0 - L_T) / L_0 / T, the same for both.
  for curve in (FAST, SLOW):
    np.testing.assert_allclose(objectives.discounted_progress(curve, 1.0), -0.75 / 3)
  grad = jax.grad(lambda c: objectives.discounted_progress(c, gamma))(FAST)
  np.testing.assert_allclose(grad, [0.0, (1 - gamma) / 4 / 1.75, (gamma - gamma**2) / 4 / 1.75,
                                    gamma**2 / 4 / 1.75], rtol=1e-6)


def test_relative_improvement_over_a_baseline_curve():
  # B = SLOW: at steps 1, 2 the learner removes 3/4 of the baseline's loss, at step 3 nothing.
  np.testing.assert_allclose(objectives.relative_improvement(FAST, SLOW), 0.5)
  np.testing.assert_allclose(objectives.relative_improvement(SLOW, SLOW), 0.0)
  assert float(objectives.relative_improvement(SLOW, FAST)) < 0  # worse than its baseline


def test_late_mean_by_hand_and_its_segments_average_to_the_whole_curve():
  curve = jnp.array([5.0, 4.0, 3.0, 2.0, 1.0])  # T = 4: weights 2t/5 = 0.4, 0.8, 1.2, 1.6
  whole = objectives.late_mean_loss(curve)
  np.testing.assert_allclose(whole, (0.4 * 4 + 0.8 * 3 + 1.2 * 2 + 1.6 * 1) / 4, rtol=1e-6)
  assert float(whole) < float(objectives.mean_loss(curve))  # late (low) losses weigh more
  first, second = (objectives.score(objectives.get_objective("late_mean"), curve[s:s + 3], s, 4)
                   for s in (0, 2))
  np.testing.assert_allclose((first + second) / 2, whole, rtol=1e-6)
  # objectives that do not weigh time see a segment as a curve of its own
  np.testing.assert_allclose(objectives.score(objectives.mean_loss, curve[2:], 2, 4), 1.5)


@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES.names()))
def test_gradient_reads_declarations_match_autodiff(name):
  """The curve entries an objective declares its gradient reaches (estimators measure the
  others as constants) are exactly those with a non-zero gradient."""
  objective = objectives.get_objective(name)
  curve = jax.random.uniform(jax.random.key(0), (3, 6), minval=0.5, maxval=2.0)
  grad = jax.jit(jax.grad(lambda c: jnp.sum(objective(c))))(curve)
  reached = {"all": range(6), "steps": range(1, 6), "final": [5]}[objective.gradient_reads]
  for t in range(6):
    if t in reached:
      assert np.all(grad[:, t] != 0), (name, t)
    else:
      np.testing.assert_array_equal(grad[:, t], 0.0)


def test_an_unknown_gradient_reads_is_refused():
  with pytest.raises(ValueError, match="gradient_reads"):
    objectives.Objective(objectives.final_loss, gradient_reads="last")
