"""Teachers inside meta-training: steering a family, checkpointed teacher state, resume,
the monitor, baseline-relative curves, and config errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import experiment, train
from metalearn.curriculum.steering import grid_centre, make_steering
from metalearn.learners.baselined import VersusBaseline
from metalearn.tasks import RegressionPrompts, SinusoidFamily
from metalearn.unroll import unroll
from tests.conftest import ROOT

CONFIG = config_lib.load_config_module(str(ROOT / "experiments/configs/in_context.py"))


def _config(teacher, steps=20):
  c = CONFIG.get_config(f"curriculum,tiny,teacher={teacher}")
  c.num_steps, c.checkpoint_every = steps, 10
  c.optimizer.schedule = "constant"  # so a run may stop early and resume with more steps
  return c


def _rows(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("steps_per_sec")
  return rows


def test_at_task_sets_the_difficulty_of_regression_prompts():
  fam = RegressionPrompts.create("linear", 8, 17)
  easy, hard = fam.at_task(jnp.zeros(2)), fam.at_task(jnp.ones(2))
  assert (int(easy.active_dims), int(easy.active_points)) == (1, 2)
  assert (int(hard.active_dims), int(hard.active_points)) == (8, 17)
  mid = fam.at_task(jnp.array([0.5, 0.5]))
  assert (int(mid.active_dims), int(mid.active_points)) == (5, 10)  # 1 + round(3.5), 2 + 8
  ep = easy.sample(jax.random.key(0))
  assert bool(jnp.all(ep.support_x[:, 1:] == 0)) and int(ep.info["points"]) == 2


def test_grid_centres_and_arm_teachers_on_a_box_family():
  np.testing.assert_allclose(grid_centre(jnp.int32(0), 4, 2), [0.125, 0.125])
  np.testing.assert_allclose(grid_centre(jnp.int32(6), 4, 2), [0.375, 0.625])  # row 1, col 2
  fam = RegressionPrompts.create("linear", 4, 9)
  steer = make_steering("tscl", fam, grid=3)
  assert steer.teacher.space == ("discrete", 9)
  assert make_steering("alp_gmm", fam).teacher.space == ("box", 2)
  with pytest.raises(config_lib.ConfigError, match="unknown config key 'curriculum.windoww' "
                     "for teacher 'tscl'. Did you mean 'curriculum.window'"):
    make_steering("tscl", fam, windoww=3)


def test_teacher_run_is_deterministic_resumes_the_same_curriculum_and_monitors(tmp_path):
  straight = train.train(_config("tscl"), tmp_path / "a")
  train.train(_config("tscl", steps=10), tmp_path / "b")  # stop at 10, then resume to 20
  resumed = train.train(_config("tscl"), tmp_path / "b")
  assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
  for x, y in zip(jax.tree.leaves(straight.teacher), jax.tree.leaves(resumed.teacher)):
    np.testing.assert_array_equal(x, y)
  row = _rows(tmp_path / "a")[-1]
  assert {"teacher_task_0", "teacher_task_1", "monitor_mean", "monitor_final"} <= set(row)
  assert 0.0 < row["teacher_task_0"] < 1.0  # the family's box point of the chosen cells
  # the teacher saw 20 scores: its state moved from its initial value
  exp = experiment.build(_config("tscl"))
  fresh = exp.steering.teacher.init(jax.random.key(0))
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(fresh), jax.tree.leaves(straight.teacher)))


def test_monitor_measures_the_full_task_whatever_the_teacher_picks(tmp_path):
  c = config_lib.validate(_config("alp_gmm", steps=10))
  exp = experiment.build(c)
  state = train.init_state(exp, c.seed)
  monitor = train.make_monitor_fn(c, exp)(state.theta, exp.family)
  fam = exp.family  # no curriculum: the full task

  @jax.jit
  def curves(theta, key):
    eps = jax.vmap(fam.sample)(jax.random.split(key, c.monitor.num_tasks))
    return jax.vmap(lambda e: exp.learner.curve(theta, e))(eps)
  curves = curves(state.theta, jax.random.key(c.monitor.seed))
  np.testing.assert_allclose(monitor["monitor_mean"], jnp.mean(curves[:, 1:]), rtol=1e-5)


def test_versus_baseline_divides_by_the_initial_learner_and_stops_its_gradient(tiny_config):
  exp = experiment.build(tiny_config)
  key = jax.random.key(3)
  wrapped = VersusBaseline(exp.learner, key)
  theta_0 = jax.jit(exp.learner.init)(key)
  ep = jax.jit(exp.family.sample)(jax.random.key(1))
  # each learner's curve and gradient compiled as one program (as training runs them), not op
  # by op
  def curve_of(learner):
    return lambda t: unroll(learner, t, learner.init_state(t, ep), ep, 3)[1]
  wrapped_curve, own_curve = jax.jit(curve_of(wrapped)), jax.jit(curve_of(exp.learner))
  ratio = wrapped_curve(theta_0)
  np.testing.assert_allclose(ratio, 1.0, rtol=1e-6)  # the baseline is itself
  theta = jax.tree.map(lambda p: p * 0.9, theta_0)
  own, base = own_curve(theta), own_curve(theta_0)
  ratio = wrapped_curve(theta)
  np.testing.assert_allclose(ratio, own / base, rtol=1e-5)
  g = jax.jit(jax.grad(lambda t: curve_of(wrapped)(t)[-1]))(theta)
  g_own = jax.jit(jax.grad(lambda t: curve_of(exp.learner)(t)[-1]))(theta)
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_own)):
    np.testing.assert_allclose(a, b / base[-1], rtol=1e-4, atol=1e-7)


def test_baseline_run_trains(tiny_config, tmp_path):
  tiny_config.baseline, tiny_config.objective = "initial", dict(name="progress")
  tiny_config.num_steps = 10
  train.train(tiny_config, tmp_path)
  row = _rows(tmp_path)[-1]
  assert abs(row["loss_step_0"] - 1.0) < 0.5  # a ratio to the initial learner, near 1


@pytest.mark.parametrize("change, message", [
    (lambda c: setattr(c.curriculum, "name", "bandit"),
     "'curriculum.name' = 'bandit' is not a registered teacher"),
    (lambda c: setattr(c.task, "curriculum", (1, 1, 3, 2, 5)), "both set the task's difficulty"),
    (lambda c: setattr(c, "objective", dict(name="discounted_progress", discount=0.0)),
     "'objective.discount' = 0.0 is not allowed"),
    (lambda c: setattr(c, "baseline", "adam"), "'initial'"),
])
def test_config_errors(change, message):
  c = _config("alp_gmm")
  change(c)
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(c)


def test_a_teacher_refuses_truncated_estimators_and_single_chapter_learners():
  books = config_lib.load_config_module(str(ROOT / "experiments/configs/textbook.py"))
  c = books.get_config("regression,tiny")
  c.curriculum.name = "tscl"
  config_lib.validate(c)  # a book reader with full backprop: fine
  c.estimator = dict(name="pes")
  with pytest.raises(config_lib.ConfigError, match="truncated estimator keeps tasks"):
    config_lib.validate(c)
  c = books.get_config("regression,tiny,maml")
  c.curriculum.name = "tscl"
  with pytest.raises(config_lib.ConfigError, match="task 'textbook_regression' taken as "
                     "'episodes' has none: set curriculum.name='', a steerable task or a learner "
                     "taking it as 'book' .oml, sequential."):
    config_lib.validate(c)


def test_teacher_needs_a_steerable_task():
  c = CONFIG.get_config("gpicl,tiny")  # projected classification: nothing to steer
  c.curriculum.name = "uniform"
  with pytest.raises(config_lib.ConfigError, match="a teacher can steer"):
    config_lib.validate(c)


def test_a_teacher_steers_sinusoid_amplitude_phase_and_shots(tiny_config):
  fam = SinusoidFamily()
  keys = jax.random.split(jax.random.key(0), 400)
  full = jax.vmap(fam.sample)(keys)
  at_one = jax.vmap(fam.at_task(jnp.ones(3)).sample)(keys)
  np.testing.assert_array_equal(at_one.support_y, full.support_y)  # u = 1: the family as it was
  assert bool(jnp.all(at_one.info["support_weight"] == 1))
  k_amp = jax.vmap(lambda k: jax.random.split(k, 3)[0])(keys)  # the prior as drawn before
  np.testing.assert_array_equal(full.info["amplitude"], jax.vmap(
      lambda k: jax.random.uniform(k, (), minval=0.1, maxval=5.0))(k_amp))
  easy = jax.vmap(fam.at_task(jnp.array([0.1, 0.0, 0.0])).sample)(keys)
  assert float(easy.info["amplitude"].max()) <= 0.1 + 0.1 * 4.9 + 1e-6
  assert float(jnp.abs(easy.info["phase"]).max()) == 0.0
  tiny_config.curriculum.name, tiny_config.num_steps = "alp_gmm", 10
  exp = experiment.build(config_lib.validate(tiny_config))
  assert exp.steering.teacher.space == ("box", 3)
  state = train.init_state(exp, 0)
  state, metrics = jax.jit(train.make_outer_step(exp, 0))(state, exp.family)
  assert int(state.step) == 1 and bool(metrics["finite"])
  assert metrics["teacher_task"].shape == (3,)


def test_a_teacher_steers_the_networks_a_learned_optimizer_trains():
  lopt = config_lib.load_config_module(str(ROOT / "experiments/configs/learned_optimizer.py"))
  c = lopt.get_config("small_lopt,tiny,teacher=tscl")
  assert (c.estimator.name, tuple(c.task.hidden)) == ("es", (16, 16))
  c.learner.num_inner_steps = 5
  c = config_lib.validate(c)
  exp = experiment.build(c)
  assert exp.steering.teacher.space == ("discrete", c.curriculum.grid ** 2)
  state, metrics = train.make_chunk_fn(exp, 0)(train.init_state(exp, 0), exp.family, 3)
  assert int(state.step) == 3 and bool(np.all(metrics["finite"]))
  assert metrics["teacher_task"].shape == (3, 2)
  # the teacher moved between networks
  assert len({tuple(np.round(t, 3)) for t in np.asarray(metrics["teacher_task"])}) > 1
  for bad in ("pes", "truncated_es"):
    with pytest.raises(config_lib.ConfigError, match="truncated estimator keeps tasks"):
      config_lib.validate(lopt.get_config(f"mlp_lopt,tiny,teacher=tscl,estimator={bad}"))
  c = lopt.get_config("mlp_lopt,tiny,teacher=tscl")
  c.task.hidden = (16, 8)
  with pytest.raises(config_lib.ConfigError, match="equal hidden widths"):
    config_lib.validate(c)
