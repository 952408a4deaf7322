"""Backprop estimators: through the whole unroll, or through truncated segments of it."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metalearn import parallel
from metalearn.estimators.base import (ESTIMATORS, TRUNCATION, EstimatorSpec,
                                       MetaGradientEstimator, check_truncated_config,
                                       check_truncation)
from metalearn.registry import Option
from metalearn.learners import Learner
from metalearn.objectives import Objective, as_objective, score
from metalearn.tasks import Episode, TaskFamily, sample_batch
from metalearn.unroll import unroll


def full_backprop(learner: Learner, family: TaskFamily, objective: Objective,
                  meta_batch_size: int, num_steps: int, remat: bool = False,
                  mesh: jax.sharding.Mesh | None = None) -> MetaGradientEstimator:
  """Exact meta-gradient: backprop through all ``num_steps`` inner steps.

  Each call samples ``meta_batch_size`` fresh tasks, unrolls the learner from
  ``init_state(theta)`` on each (``vmap``), and differentiates the mean objective.
  The estimator is stateless. With a ``mesh``, the tasks are split over its ``data`` axis.
  """
  objective = as_objective(objective)

  def meta_loss(theta, key):
    episodes = parallel.shard_tasks(sample_batch(family, key, meta_batch_size), mesh)

    def per_task(episode):
      _, curve = unroll(learner, theta, learner.init_state(theta, episode), episode,
                        num_steps, remat, differentiate=objective.gradient_reads)
      return objective(curve), curve

    objectives, curves_BT = jax.vmap(per_task)(episodes)
    return jnp.mean(objectives), curves_BT

  def init(key, theta):
    del key, theta
    return ()

  def estimate(theta, state, key):
    (loss, curves_BT), grads = jax.value_and_grad(meta_loss, has_aux=True)(theta, key)
    return grads, state, {"meta_loss": loss, "curve": jnp.mean(curves_BT, axis=0)}

  return MetaGradientEstimator(init, estimate)


class TruncatedState(NamedTuple):
  """Persistent per-task inner learning for truncated backprop (leading axis: meta-batch)."""
  episodes: Episode
  inner_state: object
  step: jax.Array  # int32[B], inner steps done on each task


def truncated_backprop(learner: Learner, family: TaskFamily, objective: Objective,
                       meta_batch_size: int, num_steps: int, truncation_length: int,
                       remat: bool = False, mesh: jax.sharding.Mesh | None = None
                       ) -> MetaGradientEstimator:
  """Truncated backprop through time over persistent inner runs.

  Every call advances each task's inner run by ``truncation_length`` steps and differentiates
  the objective of that segment's curve only; the state at the segment's start is a constant
  (``stop_gradient``), except on a task's first segment, where it is ``init_state(theta)``.
  When a run reaches ``num_steps`` its task is replaced by a fresh one. Cost and memory are
  per segment; the price is bias: influence of ``theta`` across segment boundaries is dropped
  (for MAML-style initialisations, later segments carry no gradient to the init at all).
  """
  check_truncation(num_steps, truncation_length)
  objective = as_objective(objective)

  def init(key, theta):
    episodes = parallel.shard_tasks(sample_batch(family, key, meta_batch_size), mesh)
    inner = jax.vmap(learner.init_state, in_axes=(None, 0))(theta, episodes)
    return TruncatedState(episodes, jax.lax.stop_gradient(inner),
                          jnp.zeros(meta_batch_size, jnp.int32))

  def segment_loss(theta, state: TruncatedState):
    state = parallel.shard_tasks(state, mesh)

    def per_task(episode, carried, step):
      fresh = learner.init_state(theta, episode)
      start = jax.tree.map(lambda f, c: jnp.where(step == 0, f, jax.lax.stop_gradient(c)),
                           fresh, carried)
      end, curve = unroll(learner, theta, start, episode, truncation_length, remat,
                          differentiate=objective.gradient_reads)
      return score(objective, curve, step, num_steps), (end, curve)

    objectives, (ends, curves_BT) = jax.vmap(per_task)(state.episodes, state.inner_state,
                                                       state.step)
    return jnp.mean(objectives), (ends, curves_BT)

  def estimate(theta, state: TruncatedState, key):
    (loss, (ends, curves_BT)), grads = jax.value_and_grad(segment_loss, has_aux=True)(
        theta, state)
    step = state.step + truncation_length
    done = step >= num_steps
    fresh = parallel.shard_tasks(sample_batch(family, key, meta_batch_size), mesh)
    pick = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), new, old)
    new_state = TruncatedState(jax.tree.map(pick, fresh, state.episodes),
                               jax.lax.stop_gradient(ends), jnp.where(done, 0, step))
    return grads, new_state, {"meta_loss": loss, "curve": jnp.mean(curves_BT, axis=0)}

  return MetaGradientEstimator(init, estimate)


_REMAT = Option(False, doc="rematerialise the unroll (memory ~ sqrt(T), one more forward)")

ESTIMATORS.register(EstimatorSpec(
    name="backprop", doc="exact meta-gradient: backprop through the whole unroll",
    build=lambda e, learner, family, objective, batch, steps, mesh: full_backprop(
        learner, family, objective, batch, steps, e.remat, mesh),
    options=dict(remat=_REMAT)))

ESTIMATORS.register(EstimatorSpec(
    name="truncated_backprop", doc="backprop through segments of persistent inner runs",
    build=lambda e, learner, family, objective, batch, steps, mesh: truncated_backprop(
        learner, family, objective, batch, steps, e.truncation_length, e.remat, mesh),
    needs=frozenset({"stepwise"}), truncated=True, check=check_truncated_config,
    options=dict(truncation_length=TRUNCATION, remat=_REMAT)))
