"""ES, truncated ES and PES: unbiasedness, the small-sigma limit, and non-finite trajectories."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn import estimators, objectives
from metalearn.learners.base import Learner
from metalearn.tasks.base import TaskFamily
from metalearn.tasks.influence_balancing import InfluenceBalancing, NoTasks
from metalearn.unroll import unroll

K, SEGMENTS, PAIRS, REPEATS = 2, 3, 2000, 48


def _estimates(persistent: bool, theta):
  """``REPEATS`` independent estimates of the gradient at the third segment."""
  learner = InfluenceBalancing()
  est = estimators.truncated_es(learner, NoTasks(), objectives.final_loss, PAIRS, 10**6, K,
                                sigma=0.05, persistent=persistent, stagger=False)

  def one(key):
    state = est.init(key, theta)
    for i in range(SEGMENTS):
      grads, state, _ = est.estimate(theta, state, jax.random.fold_in(key, i))
    return grads["theta"]

  return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), REPEATS)))


def test_pes_is_unbiased_and_truncated_es_is_not():
  learner = InfluenceBalancing()
  theta = {"theta": jnp.float32(0.3)}

  def segment_loss(th, segments):  # loss at the end of the last segment, theta shared by all
    end, _ = unroll(learner, th, learner.init_state(th, None), None, K * segments)
    return learner.query_loss(th, end, None)

  def last_segment_only(th):  # what truncation sees: the state entering the segment is fixed
    start, _ = unroll(learner, theta, learner.init_state(theta, None), None, K * (SEGMENTS - 1))
    end, _ = unroll(learner, th, start, None, K)
    return learner.query_loss(th, end, None)

  full = float(jax.jit(jax.grad(segment_loss), static_argnums=1)(theta, SEGMENTS)["theta"])
  truncated = float(jax.jit(jax.grad(last_segment_only))(theta)["theta"])
  assert abs(full - truncated) > 0.5  # the two targets differ: the test can tell them apart
  for persistent, target, other in ((True, full, truncated), (False, truncated, full)):
    g = _estimates(persistent, theta)
    se = g.std() / np.sqrt(len(g))
    # the loss is quadratic in theta, so the smoothed gradient is the exact one
    assert abs(g.mean() - target) < 4 * se, (persistent, g.mean(), target, se)
    assert abs(g.mean() - other) > 10 * se


@dataclasses.dataclass(frozen=True)
class _Nonlinear(Learner):
  """s <- tanh(a s + b), loss (s - 0.5)^2: a smooth, non-quadratic unroll."""

  def init(self, key):
    return {"a": jnp.float32(0.8), "b": jnp.float32(0.3)}

  def init_state(self, theta, episode):
    return jnp.float32(0.1)

  def step(self, theta, s, episode):
    return jnp.tanh(theta["a"] * s + theta["b"])

  def query_loss(self, theta, s, episode):
    return (s - 0.5) ** 2 + 0.3 * jnp.sin(4 * theta["a"])

  def predict(self, theta, s, x):
    return s


def test_es_approaches_backprop_as_sigma_shrinks():
  learner = _Nonlinear()
  theta = learner.init(None)
  bp = estimators.full_backprop(learner, NoTasks(), objectives.final_loss, 1, 5)
  exact, _, _ = bp.estimate(theta, (), jax.random.key(0))
  exact = np.array([exact["a"], exact["b"]])
  errors = {}
  for sigma in (0.5, 0.01):
    es = estimators.antithetic_es(learner, NoTasks(), objectives.final_loss, 20000, 5, sigma)
    g, _, m = jax.jit(es.estimate)(theta, (), jax.random.key(1))
    errors[sigma] = np.linalg.norm(np.array([g["a"], g["b"]]) - exact) / np.linalg.norm(exact)
    assert int(m["nonfinite_trajectories"]) == 0
  assert errors[0.01] < 0.03
  assert errors[0.5] > 2 * errors[0.01]  # the smoothing bias of a large sigma


@dataclasses.dataclass(frozen=True)
class _Exploding(Learner):
  """s <- s * growth; tasks with growth 1e30 overflow to inf within a few steps."""

  def init(self, key):
    return {"w": jnp.float32(1.0)}

  def init_state(self, theta, task):
    return jnp.float32(1.0)

  def step(self, theta, s, task):
    return s * task * theta["w"]

  def query_loss(self, theta, s, task):
    return s * s

  def predict(self, theta, s, x):
    return s


@dataclasses.dataclass(frozen=True)
class _Growths(TaskFamily):
  """Tasks: growth 1e30 with probability 1/2, else 0.9."""

  def sample(self, key):
    return jnp.where(jax.random.bernoulli(key), jnp.float32(1e30), jnp.float32(0.9))


def test_nonfinite_trajectories_are_excluded_counted_and_reset():
  learner, family = _Exploding(), _Growths()
  theta = learner.init(None)
  for est in (estimators.pes(learner, family, objectives.mean_loss, 8, 20, 5, 0.01,
                             stagger=False),
              estimators.truncated_es(learner, family, objectives.mean_loss, 8, 20, 5, 0.01,
                                      stagger=False)):
    state = est.init(jax.random.key(0), theta)
    bad = np.asarray(state.tasks) > 1.0
    assert 0 < bad.sum() < 8
    grads, new_state, metrics = jax.jit(est.estimate)(theta, state, jax.random.key(1))
    assert int(metrics["nonfinite_trajectories"]) == bad.sum()
    assert np.isfinite(grads["w"]) and np.isfinite(metrics["meta_loss"])
    np.testing.assert_array_equal(np.asarray(new_state.step)[bad], 0)  # reset ...
    np.testing.assert_array_equal(np.asarray(new_state.accumulated["w"])[bad], 0.0)
    np.testing.assert_array_equal(np.asarray(new_state.step)[~bad], 5)  # ... the rest go on
  es = estimators.antithetic_es(learner, family, objectives.mean_loss, 8, 10, 0.01)
  grads, _, metrics = jax.jit(es.estimate)(theta, (), jax.random.key(2))
  assert 0 < int(metrics["nonfinite_trajectories"]) < 8 and np.isfinite(grads["w"])


@dataclasses.dataclass(frozen=True)
class _AlwaysExploding(TaskFamily):
  """Every task has growth 1e30."""

  def sample(self, key):
    del key
    return jnp.float32(1e30)


def test_all_nonfinite_gives_nan_meta_loss_so_the_update_is_skipped():
  learner = _Exploding()
  es = estimators.antithetic_es(learner, _AlwaysExploding(), objectives.mean_loss, 4, 10, 0.01)
  grads, _, metrics = jax.jit(es.estimate)(learner.init(None), (), jax.random.key(0))
  assert np.isnan(metrics["meta_loss"]) and int(metrics["nonfinite_trajectories"]) == 4
  assert float(grads["w"]) == 0.0


def test_pes_staggers_its_pairs_over_the_horizon():
  learner = InfluenceBalancing()
  est = estimators.pes(learner, NoTasks(), objectives.final_loss, 4, 40, 5, 0.1)
  state = est.init(jax.random.key(0), learner.init(None))
  np.testing.assert_array_equal(np.asarray(state.step), [0, 10, 20, 30])
  # pair b's runs were advanced step[b] steps with theta: later pairs are further along
  s0 = np.asarray(state.inner)[:4, 0]
  assert len(np.unique(s0)) == 4


def test_truncated_estimators_score_segments_at_their_place_in_the_horizon():
  """A time-aware objective (late_mean) weighs each pair's segment by where it starts: PES's
  staggered pairs and truncated backprop's second segment get their absolute weights."""
  learner, horizon, k = InfluenceBalancing(), 40, 5
  theta = {"theta": jnp.float32(0.3)}
  late = objectives.get_objective("late_mean")

  @functools.partial(jax.jit, static_argnums=0)  # one program per start, not op by op
  def segment(start):  # the K-step curve from step ``start`` of a run at theta
    s, _ = unroll(learner, theta, learner.init_state(theta, None), None, start)
    return unroll(learner, theta, s, None, k)[1]

  expected = lambda start: float(objectives.late_mean_loss(segment(start), start, horizon))

  est = estimators.pes(learner, NoTasks(), late, 4, horizon, k, sigma=1e-6)
  state = jax.jit(est.init)(jax.random.key(0), theta)  # pairs start at steps 0, 10, 20, 30
  _, _, metrics = jax.jit(est.estimate)(theta, state, jax.random.key(1))
  want = np.mean([expected(s) for s in (0, 10, 20, 30)])
  np.testing.assert_allclose(metrics["meta_loss"], want, rtol=1e-4)
  untimed = np.mean([float(objectives.late_mean_loss(segment(s))) for s in (0, 10, 20, 30)])
  assert abs(want - untimed) > 100 * 1e-4 * abs(want)  # scoring at step 0 would fail the check

  tbp = estimators.truncated_backprop(learner, NoTasks(), late, 1, horizon, k)
  state = jax.jit(tbp.init)(jax.random.key(0), theta)
  estimate = jax.jit(tbp.estimate)
  _, state, _ = estimate(theta, state, jax.random.key(1))
  _, _, metrics = estimate(theta, state, jax.random.key(2))  # the segment at step 5
  np.testing.assert_allclose(metrics["meta_loss"], expected(k), rtol=1e-5)
