import ml_collections
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
  _check(lambda c: c.learner.update(inner_lt=0.1), r"unknown config key 'learner.inner_lt' for "
         r"learner 'maml'. Did you mean 'learner.inner_lr'\? Keys allowed: inner_lr, "
         r"name, num_inner_steps")
  _check(lambda c: c.update(num_step=5), r"unknown config key 'num_step' for an experiment "
         r"config. Did you mean 'num_steps'\?")


def test_wrong_type():
  c = config_lib.default_config()
  del c["meta_batch_size"]  # ConfigDict keeps a key's type; a new key takes any
  c.meta_batch_size = "25"
  with pytest.raises(ConfigError, match="'meta_batch_size' must be an int .like 25., got str"):
    config_lib.validate(c)


@pytest.mark.parametrize("key,value,match", [
    ("learner.inner_lr", -0.01, r"'learner.inner_lr' = -0.01 is not allowed: it must be a "
                                r"number > 0 \(the inner SGD step size"),
    ("learner.name", "mamal", r"'learner.name' = 'mamal' is not a registered learner. Did you "
                              r"mean 'maml'\? Registered: anil, fomaml, hyper_lopt, in_context, "
                              r"lora_finetune, lstm_lopt, maml, metasgd, mlp_lopt, oml, protonet, "
                              r"reptile, "
                              r"sequential"),
    ("objective.name", "speed", r"'objective.name' = 'speed' is not a registered objective.*"
                                r"Registered: discounted_progress, final, late_mean, "
                                r"log_progress, mean, mean_all, progress"),
    ("optimizer.name", "adamm", r"'optimizer.name' = 'adamm'.*optax optimizer"),
    ("learner.num_inner_steps", -1, r"'learner.num_inner_steps' = -1.*an int >= 1"),
    ("learner.num_inner_steps", 0, r"'learner.num_inner_steps' = 0.*an int >= 1"),
    ("mesh.cpu_devices", -2, r"'mesh.cpu_devices' = -2.*an int >= -1 \(CPU devices to split "
                             r"the host into \(-1: one per core; 0: JAX's default\)\)"),
])
def test_invalid_values(key, value, match):
  def mutate(c):
    group, _, leaf = key.rpartition(".")
    (c[group] if group else c)[leaf] = value
  _check(mutate, match)


def test_cross_key_rules():
  _check(lambda c: c.learner.update(name="reptile"),
         "learner.name='reptile', estimator.name='backprop' do not go together: the learner's "
         "meta-update needs an estimator providing 'reptile_update' .e.g. "
         "estimator.name='reptile'.")
  def truncated(c):
    c.estimator = dict(name="truncated_backprop", truncation_length=2)
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


def _partial(task="sinusoid", model=None, learner="maml", **changes):
  """A config naming its components, with ``group__key=value`` changes (validated later)."""
  c = ml_collections.ConfigDict()
  c.task, c.learner = dict(name=task), dict(name=learner)
  if model is not None:
    c.model = dict(name=model)
  for key, value in changes.items():
    group, name = key.split("__")
    if group not in c:
      c[group] = dict()
    c[group][name] = value
  return c


def _few_shot(**task):
  return _partial("few_shot", "conv4", **{f"task__{k}": v for k, v in task.items()})


def test_few_shot_config_is_valid_and_has_its_own_schema():
  config_lib.validate(_few_shot())
  with pytest.raises(ConfigError, match=r"unknown config key 'task.num_shots' for task "
                                        r"'few_shot'. Did you mean 'task.num_support'\?"):
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
  c = config_lib.default_config(task="few_shot", model="conv4")
  group, _, leaf = key.rpartition(".")
  c[group][leaf] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_protonet_rules():
  with pytest.raises(ConfigError, match="learner.name='protonet', task.name='sinusoid' do not "
                     "go together: the learner handles 'classification' targets"):
    config_lib.validate(_partial(learner="protonet"))
  with pytest.raises(ConfigError, match="unknown config key 'learner.num_inner_steps' for "
                     "learner 'protonet'. Keys allowed: name$"):
    config_lib.validate(_partial("few_shot", "conv4", "protonet", learner__num_inner_steps=1))
  with pytest.raises(ConfigError, match="'protonet' has no inner steps: set "
                     "eval.num_inner_steps=0"):
    config_lib.validate(_partial("few_shot", "conv4", "protonet", eval__num_inner_steps=10))
  c = config_lib.validate(_partial("few_shot", "conv4", "protonet"))
  assert c.eval.num_inner_steps == 0 and c.eval.report_steps == (0,)  # the learner's defaults
  with pytest.raises(ConfigError, match="'pretrained'.*is for regression tasks"):
    config_lib.validate(_partial("few_shot", "conv4",
                                 eval__baselines=("random_init", "pretrained")))


def test_learned_optimizer_configs_validate_and_mismatches_are_named():
  lopt = lambda name="mlp_lopt", **changes: _partial("classification_training", "none", name,
                                                     **changes)
  c = config_lib.validate(lopt(estimator__name="pes", estimator__truncation_length=10))
  assert "hidden" in c.learner and "inner_lr" not in c.learner and "lrs" in c.eval
  assert c.eval.name == "optimizer"  # the task's evaluator
  bad = config_lib.default_config("classification_training", "none", "mlp_lopt")
  bad.learner.name = "lstm_lopt"  # its keys differ: no 'hidden'
  with pytest.raises(config_lib.ConfigError, match="unknown config key "
                     "'learner.(exp_mult|features|hidden|step_mult)' for learner 'lstm_lopt'"):
    config_lib.validate(bad)
  with pytest.raises(config_lib.ConfigError, match="learner.name='hyper_lopt', task.name="
                     "'sinusoid' do not go together: the learner learns on 'training' families"):
    config_lib.validate(_partial("sinusoid", "none", "hyper_lopt"))
  with pytest.raises(config_lib.ConfigError, match="learner.name='maml', model.name='none' do "
                     "not go together: the learner needs a network model"):
    config_lib.validate(_partial("sinusoid", "none", "maml"))
  with pytest.raises(config_lib.ConfigError, match="learner.name='mlp_lopt' trains the task's "
                     "own network: set model.name='none'"):
    config_lib.validate(_partial("classification_training", "mlp", "mlp_lopt"))
  with pytest.raises(config_lib.ConfigError, match="multiple of estimator.truncation_length"):
    config_lib.validate(lopt(estimator__name="pes", estimator__truncation_length=7))
  with pytest.raises(config_lib.ConfigError, match="eval.ood"):
    config_lib.validate(lopt(estimator__name="pes", estimator__truncation_length=10,
                             eval__ood=("wider", "bigger")))


def test_in_context_configs_validate_and_mismatches_are_named():
  def icl(task="icl_regression", model="transformer", **changes):
    return _partial(task, model, "in_context", **changes)

  config_lib.validate(icl())
  config_lib.validate(icl(model="lsa", learner__layout="prefix"))
  config_lib.validate(icl(task="icl_classification", learner__layout="packed"))
  cases = [
      (icl(model="lsa"), "learner.layout='interleaved' does not go with model.name='lsa', "
                         "which reads the layouts \\['prefix'\\]"),
      (icl(model="mlp"), "learner.name='in_context', model.name='mlp' do not go together: the "
                         "learner needs a sequence model"),
      (icl(model="transformer", model__num_heads=3), "multiple of model.num_heads"),
      (icl(estimator__name="pes"), "estimator.name='pes', learner.name='in_context' do not go "
                                   "together: the estimator needs a learner that is "
                                   "'stepwise'"),
      (icl(eval__baselines=("bayes",)), "needs task.function_class='linear_pool'"),
      (icl(eval__baselines=("logistic_regression",)), "take baselines from"),
      (icl(eval__report_points=(0, 11)), "below task.num_points"),
      (icl(task__curriculum=(6, 1, 11, 2, 100)), "starts above task.dim"),
      (icl(task__curriculum=(1, 2)), "task.curriculum"),
      (icl(task__function_class="quadratic"), "task.function_class"),
      (icl(task__x_dist="laplace"), "task.x_dist"),
      (icl(task="icl_classification", eval__ood=("scaled_x",)), "'eval.ood': out-of-distribution prompt sets are for regression prompts; set "
       "eval.ood=\\(\\) for icl_classification"),
  ]
  for config, match in cases:
    with pytest.raises(ConfigError, match=match):
      config_lib.validate(config)
  with pytest.raises(ConfigError, match="do not go together"):
    config_lib.validate(_partial("sinusoid", "transformer", "in_context"))
