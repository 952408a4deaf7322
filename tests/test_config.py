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
    ("learner.name", "mamal", r"'learner.name' = 'mamal'.*one of \['anil', 'fomaml', "
                              r"'hyper_lopt', 'in_context', 'lstm_lopt', 'maml', 'metasgd', "
                              r"'mlp_lopt', 'oml', 'protonet', 'reptile', 'sequential'\]"),
    ("objective", "speed", r"'objective' = 'speed'.*one of \['discounted_progress', 'final', "
                           r"'late_mean', 'log_progress', 'mean', 'mean_all', 'progress'\]"),
    ("optimizer.name", "adamm", r"'optimizer.name' = 'adamm'.*optax optimizer"),
    ("learner.num_inner_steps", -1, r"'learner.num_inner_steps' = -1.*an int >= 0"),
    ("learner.num_inner_steps", 0, r"learner.num_inner_steps must be >= 1 for 'maml'"),
    ("mesh.cpu_devices", -2, r"'mesh.cpu_devices' = -2.*a CPU device count >= 1, 0 for JAX's "
                             r"default or -1 for one per core"),
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


def _few_shot(**task):
  c = config_lib.default_config(task="few_shot", model="conv4")
  c.task.update(**task)
  return c


def test_few_shot_config_is_valid_and_has_its_own_schema():
  config_lib.validate(_few_shot())
  with pytest.raises(ConfigError, match=r"unknown config key 'task.num_shots'. Did you mean "
                                        r"'task.num_support'\?"):
    config_lib.validate(_few_shot(num_shots=1))
  with pytest.raises(ConfigError, match=r"unknown config key 'task.amplitude_range'"):
    config_lib.validate(_few_shot(amplitude_range=(0.1, 5.0)))


@pytest.mark.parametrize("key,value,match", [
    ("task.num_ways", 1, r"'task.num_ways' = 1 is not allowed"),
    ("task.source", "http", r"'task.source' = 'http' is not allowed"),
    ("task.protocol", "vinyals", r"'task.protocol' = 'vinyals' is not allowed"),
    ("model.norm", "instance", r"'model.norm' = 'instance'.*one of \['batch', 'layer', 'none'\]"),
    ("model.conv_impl", "cudnn", r"'model.conv_impl' = 'cudnn'.*one of \['xla', 'im2col'\]"),
    ("eval.split", "val", r"'eval.split' = 'val'.*'validation'"),
])
def test_few_shot_invalid_values(key, value, match):
  c = _few_shot()
  group, _, leaf = key.rpartition(".")
  c[group][leaf] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_protonet_rules():
  c = config_lib.default_config()
  c.learner.update(name="protonet", num_inner_steps=0)
  c.eval.update(num_inner_steps=0, report_steps=(0,), baselines=())
  with pytest.raises(ConfigError, match="'protonet' needs task.name='few_shot'"):
    config_lib.validate(c)
  c = _few_shot()
  c.learner.name = "protonet"
  with pytest.raises(ConfigError, match="'protonet' has no inner steps"):
    config_lib.validate(c)
  c.learner.num_inner_steps = 0
  c.eval.update(num_inner_steps=0, report_steps=(0,), baselines=())
  config_lib.validate(c)
  c = _few_shot()
  c.eval.baselines = ("random_init", "pretrained")
  with pytest.raises(ConfigError, match="'pretrained'.*is for regression tasks"):
    config_lib.validate(c)


def test_learned_optimizer_configs_validate_and_mismatches_are_named():
  c = config_lib.default_config("classification_training", "none", "mlp_lopt")
  c.estimator.name, c.estimator.truncation_length = "pes", 10
  config_lib.validate(c)
  assert "hidden" in c.learner and "inner_lr" not in c.learner and "lrs" in c.eval
  bad = config_lib.default_config("classification_training", "none", "mlp_lopt")
  bad.learner.name = "lstm_lopt"  # its keys differ: no 'hidden'
  with pytest.raises(config_lib.ConfigError, match="unknown config key 'learner.(exp_mult|features|hidden|step_mult)'"):
    config_lib.validate(bad)
  wrong_task = config_lib.default_config("sinusoid", "none", "hyper_lopt")
  with pytest.raises(config_lib.ConfigError, match="learned optimizers .* train networks"):
    config_lib.validate(wrong_task)
  needs_model = config_lib.default_config("sinusoid", "none", "maml")
  with pytest.raises(config_lib.ConfigError, match="needs a model"):
    config_lib.validate(needs_model)
  c.estimator.truncation_length = 7
  with pytest.raises(config_lib.ConfigError, match="multiple of estimator.truncation_length"):
    config_lib.validate(c)
  c.estimator.truncation_length = 10
  c.eval.ood = ("wider", "bigger")
  with pytest.raises(config_lib.ConfigError, match="eval.ood"):
    config_lib.validate(c)


def test_in_context_configs_validate_and_mismatches_are_named():
  def icl(task="icl_regression", model="transformer", **changes):
    c = config_lib.default_config(task, model, "in_context")
    for key, value in changes.items():
      group, name = key.split("__")
      c[group][name] = value
    return c

  config_lib.validate(icl())
  config_lib.validate(icl(model="lsa", learner__layout="prefix"))
  config_lib.validate(icl(task="icl_classification", learner__layout="packed"))
  cases = [
      (icl(model="lsa"), "model.name='lsa' .* learner.layout='prefix' go together"),
      (icl(model="mlp"), "needs a sequence model"),
      (icl(model="transformer", model__num_heads=3), "multiple of model.num_heads"),
      (icl(estimator__name="pes"), "does not apply to in-context learners"),
      (icl(eval__baselines=("bayes",)), "needs task.function_class='linear_pool'"),
      (icl(eval__baselines=("logistic_regression",)), "take baselines from"),
      (icl(eval__report_points=(0, 11)), "below task.num_points"),
      (icl(task__curriculum=(6, 1, 11, 2, 100)), "starts above task.dim"),
      (icl(task__curriculum=(1, 2)), "task.curriculum"),
      (icl(task__function_class="quadratic"), "task.function_class"),
      (icl(task__x_dist="laplace"), "task.x_dist"),
      (icl(task="icl_classification", eval__ood=("scaled_x",)), "eval.ood prompt sets are for"),
  ]
  for config, match in cases:
    with pytest.raises(ConfigError, match=match):
      config_lib.validate(config)
  mixed = config_lib.default_config("sinusoid", "transformer", "in_context")
  with pytest.raises(ConfigError, match="do not go together"):
    config_lib.validate(mixed)
