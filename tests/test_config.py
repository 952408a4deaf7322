import pytest

from metalearn import config as config_lib
from metalearn.config import ConfigError


def _check(mutate, match):
  c = config_lib.default_config()
  mutate(c)
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_default_config_is_valid():
  config_lib.validate(config_lib.default_config())


def test_unknown_key_names_the_key_and_suggests():
  _check(lambda c: c.learner.update(inner_lt=0.1), r"unknown config key 'learner.inner_lt'. Did you mean 'learner.inner_lr'\?")


def test_wrong_type():
  c = config_lib.default_config()
  del c["meta_batch_size"]  # ConfigDict keeps a key's type; a new key takes any
  c.meta_batch_size = "25"
  with pytest.raises(ConfigError, match="'meta_batch_size' must be of type int.*got str"):
    config_lib.validate(c)


@pytest.mark.parametrize("key,value,match", [
    ("learner.inner_lr", -0.01, r"'learner.inner_lr' = -0.01 is not allowed: it must be a step "
                                r"size > 0"),
    ("learner.name", "mamal", r"'learner.name' = 'mamal'.*one of \['anil', 'fomaml', 'maml', "
                              r"'metasgd', 'reptile'\]"),
    ("objective", "speed", r"'objective' = 'speed'.*one of \['final', 'mean', 'progress'\]"),
    ("optimizer.name", "adamm", r"'optimizer.name' = 'adamm'.*optax optimizer"),
    ("learner.num_inner_steps", 0, r"'learner.num_inner_steps' = 0.*an int >= 1"),
])
def test_invalid_values(key, value, match):
  def mutate(c):
    group, _, leaf = key.rpartition(".")
    (c[group] if group else c)[leaf] = value
  _check(mutate, match)


def test_cross_key_rules():
  _check(lambda c: c.learner.update(name="reptile"),
         "learner.name='reptile' and estimator.name='reptile' go together")
  def truncated(c):
    c.estimator.name = "truncated_backprop"
    c.estimator.truncation_length = 2
    c.learner.num_inner_steps = 3
  _check(truncated, "multiple of estimator.truncation_length")
  _check(lambda c: c.optimizer.kwargs.update(beta3=0.9), "'optimizer.kwargs.beta3' is not an argument of optax.adam; it takes: b1")


def test_optimizer_and_chunking_rules():
  _check(lambda c: c.optimizer.update(name="lbfgs"), "do not give a usable optax optimizer")
  _check(lambda c: c.optimizer.kwargs.update(b1="x"), "do not give a usable optax optimizer")
  _check(lambda c: c.optimizer.update(name="Schedule"), "'optimizer.name' = 'Schedule'")
  _check(lambda c: c.update(log_every=700), r"'log_every' = 700 must be a multiple of "
                                            r"steps_per_call \(500\)")
  _check(lambda c: c.eval.update(report_steps=()), r"'eval.report_steps' = \(\) is not allowed")
  _check(lambda c: c.learner.update(inner_lr=float("inf")), "'learner.inner_lr' = inf")


def test_num_steps_may_not_change_under_a_decaying_schedule():
  a = config_lib.default_config()
  a.optimizer.schedule = "linear"
  b = config_lib.default_config()
  b.optimizer.schedule = "linear"
  b.num_steps = 5
  assert "sets the length of the 'linear' learning-rate schedule" in config_lib.resume_conflicts(
      a.to_dict(), b.to_dict())[0]


def test_resume_conflicts_ignore_resumable_keys():
  a = config_lib.default_config().to_dict()
  b = config_lib.default_config()
  b.num_steps = 5
  b.learner.inner_lr = 0.5
  assert config_lib.resume_conflicts(a, b.to_dict()) == [
      "learner.inner_lr: 0.01 in the workdir, 0.5 now"]
