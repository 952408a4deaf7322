"""From a validated config to the pieces of an experiment, picked by name."""

from typing import NamedTuple

import ml_collections
import optax

from metalearn import estimators, models, objectives
from metalearn.learners import GradientLearner, make_gradient_learner
from metalearn.tasks import SinusoidFamily, TaskFamily


class Experiment(NamedTuple):
  """Everything the meta-trainer and the evaluator need, built once per config."""
  family: TaskFamily
  learner: GradientLearner
  objective: objectives.Objective
  estimator: estimators.MetaGradientEstimator
  optimizer: optax.GradientTransformation


def make_family(config: ml_collections.ConfigDict, num_query: int | None = None) -> TaskFamily:
  t = config.task
  return SinusoidFamily(num_support=t.num_support,
                        num_query=t.num_query if num_query is None else num_query,
                        amplitude=tuple(t.amplitude), phase=tuple(t.phase),
                        x_range=tuple(t.x_range))


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """``optax.<name>(learning_rate=schedule, **kwargs)``, optionally after norm clipping."""
  o = config.optimizer
  lr = {
      "constant": lambda: o.learning_rate,
      "linear": lambda: optax.linear_schedule(o.learning_rate, 0.0, config.num_steps),
      "cosine": lambda: optax.cosine_decay_schedule(o.learning_rate, config.num_steps),
  }[o.schedule]()
  opt = getattr(optax, o.name)(learning_rate=lr, **o.kwargs.to_dict())
  if o.clip_grad_norm > 0:
    opt = optax.chain(optax.clip_by_global_norm(o.clip_grad_norm), opt)
  return opt


def make_learner(config: ml_collections.ConfigDict, family: TaskFamily,
                 name: str | None = None) -> GradientLearner:
  init_fn, apply_fn = models.mlp(config.model.hidden, family.input_dim, family.output_dim)
  return make_gradient_learner(name or config.learner.name, init_fn, apply_fn, family.loss,
                               config.learner.inner_lr)


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Builds the experiment a (validated) config describes."""
  family = make_family(config)
  learner = make_learner(config, family)
  objective = objectives.get_objective(config.objective)
  e, steps, batch = config.estimator, config.learner.num_inner_steps, config.meta_batch_size
  if e.name == "backprop":
    estimator = estimators.full_backprop(learner, family, objective, batch, steps, e.remat)
  elif e.name == "truncated_backprop":
    estimator = estimators.truncated_backprop(learner, family, objective, batch, steps,
                                              e.truncation_length, e.remat)
  else:
    estimator = estimators.reptile(learner, family, objective, batch, steps)
  return Experiment(family, learner, objective, estimator, make_optimizer(config))
