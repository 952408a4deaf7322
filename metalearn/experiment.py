"""From a validated config to the pieces of an experiment, every one picked by name from its
registry (:mod:`metalearn.registry`); nothing here knows a component's name."""

import functools
from typing import Callable, NamedTuple

import jax
import ml_collections
import optax

from metalearn import estimators, objectives, parallel
from metalearn import config as config_lib
from metalearn.curriculum.steering import Steering, make_steering
from metalearn.estimators.base import ESTIMATORS
from metalearn.learners.base import LEARNERS, Learner
from metalearn.learners.baselined import VersusBaseline
from metalearn.objectives.base import OBJECTIVES
from metalearn.tasks.base import TASKS, TaskFamily


class Experiment(NamedTuple):
  """Everything the meta-trainer and the evaluator need, built once per config.

  ``make_estimator(family)`` builds the estimator for a family: jitted code calls it with the
  family it receives as an argument (a pytree of device arrays), so datasets are never baked
  into a compiled program as constants. ``estimator`` is the one for ``family``, for eager use.
  """
  family: TaskFamily
  learner: Learner
  objective: objectives.Objective
  make_estimator: Callable[[TaskFamily], estimators.MetaGradientEstimator]
  optimizer: optax.GradientTransformation
  mesh: jax.sharding.Mesh
  steering: Steering | None = None  # the teacher of ``curriculum.name``; None: no teacher

  @property
  def estimator(self) -> estimators.MetaGradientEstimator:
    return self.make_estimator(self.family)


def make_family(config: ml_collections.ConfigDict, split: str = "train",
                shapes: dict | None = None) -> TaskFamily:
  """The task family of ``config.task`` on ``split`` (e.g. few-shot classes ``train``,
  ``validation`` or ``test``), taken as the kind the learner learns on (a textbook read as
  single chapters by a MAML-family learner). With ``shapes`` (an export's), a task that
  declares ``without_data`` gives its family without the dataset."""
  task_spec = TASKS.get(config.task.name, "task.name")
  kind = config_lib.used_kind(task_spec, LEARNERS.get(config.learner.name, "learner.name"))
  if shapes is not None and task_spec.without_data is not None:
    return task_spec.without_data(config.task, shapes).view(kind)
  return task_spec.build(config.task, split).view(kind)


def make_learner(config: ml_collections.ConfigDict, family: TaskFamily) -> Learner:
  """The learner of ``config.learner`` for ``family``."""
  return LEARNERS.get(config.learner.name, "learner.name").build(config, family)


def make_objective(config: ml_collections.ConfigDict) -> objectives.Objective:
  """The meta-objective of ``config.objective`` with its options bound."""
  return OBJECTIVES.get(config.objective.name, "objective.name").build(config.objective)


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


def run_keys(seed: int):
  """``(init_key, estimator_key, train_key)`` of a run: the meta-parameters' initialisation,
  the estimator's state, and the outer steps' stream (``fold_in(train_key, step)``)."""
  init_key, estimator_key, train_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, estimator_key, train_key


def _estimator(config, learner: Learner, objective, mesh, family: TaskFamily):
  if config.baseline == "initial":  # curves as ratios to the learner at its initial theta
    learner = VersusBaseline(learner, run_keys(config.seed)[0])
  spec = ESTIMATORS.get(config.estimator.name, "estimator.name")
  return spec.build(config.estimator, learner, family, objective, config.meta_batch_size,
                    learner.num_inner_steps, mesh)


def build(config: ml_collections.ConfigDict, family: TaskFamily | None = None) -> Experiment:
  """Builds the experiment a config describes (validated and completed here), on the mesh
  ``config.mesh``; ``family`` replaces the task family the config names (e.g. one built in a
  notebook)."""
  config = config_lib.validate(config)
  mesh = parallel.make_mesh(config.mesh.data)
  parallel.check_divisible(config.meta_batch_size, mesh, "meta_batch_size")
  family = make_family(config) if family is None else family
  learner = make_learner(config, family)
  objective = make_objective(config)
  steering = make_steering(config.curriculum, family) if config.curriculum.name else None
  return Experiment(family, learner, objective,
                    functools.partial(_estimator, config, learner, objective, mesh),
                    make_optimizer(config), mesh, steering)
