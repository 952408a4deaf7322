"""Noisy quadratics of random conditioning: the simplest training task (a :class:`TrainingFamily`).

Each task is

.. math::  L(x) = \\tfrac12 (x - x^\\star - \\xi)^\\top H (x - x^\\star - \\xi),
           \\qquad H = Q\\,\\mathrm{diag}(\\lambda)\\,Q^\\top,

with a random rotation :math:`Q`, eigenvalues :math:`\\lambda_i = \\kappa^{-i/(d-1)}` log-spaced
from 1 down to :math:`1/\\kappa`, the condition number :math:`\\kappa` log-uniform in
``log10_condition``, and batch noise :math:`\\xi \\sim N(0, \\sigma^2 I / B)` (a mini-batch of
size ``batch_size``). The dimension is static per family; :mod:`metalearn.tasks.parametric`
samples families of random dimension.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from metalearn.registry import Option
from metalearn.tasks.base import TASKS, TaskSpec, TrainingFamily
from metalearn.tasks.training import TrainingTask


@functools.partial(jax.tree_util.register_dataclass, data_fields=[],
                   meta_fields=["dim", "log10_condition", "noise", "batch_size"])
@dataclasses.dataclass(frozen=True)
class QuadraticTraining(TrainingFamily):
  """Random ill-conditioned quadratics with mini-batch noise.

  Attributes:
    dim: d, the number of parameters.
    log10_condition: ``(low, high)`` of :math:`\\log_{10}\\kappa`.
    noise: :math:`\\sigma`, per-example noise of the optimum.
    batch_size: B; the batch noise has variance :math:`\\sigma^2 / B`.
  """
  dim: int = 10
  log10_condition: tuple[float, float] = (0.0, 3.0)
  noise: float = 1.0
  batch_size: int = 32

  def sample(self, key: jax.Array) -> TrainingTask:
    k_init, k_data, k_q, k_c, k_opt = jax.random.split(key, 5)
    q, _ = jnp.linalg.qr(jax.random.normal(k_q, (self.dim, self.dim)))
    log_kappa = jax.random.uniform(k_c, (), minval=self.log10_condition[0],
                                   maxval=self.log10_condition[1]) * jnp.log(10.0)
    eig = jnp.exp(-log_kappa * jnp.linspace(0.0, 1.0, self.dim))
    info = {"hessian": (q * eig) @ q.T, "optimum": jax.random.normal(k_opt, (self.dim,))}
    return TrainingTask.make(k_init, k_data, info)

  def init_params(self, task: TrainingTask) -> dict:
    return {"x": jax.random.normal(task.init_rng, (self.dim,))}

  def batch(self, task: TrainingTask, key: jax.Array, split: str) -> dict:
    del split  # both streams draw from the same noise distribution
    xi = jax.random.normal(key, (self.dim,)) * (self.noise / jnp.sqrt(self.batch_size))
    return {"hessian": task.info["hessian"], "target": task.info["optimum"] + xi}

  def loss(self, params: dict, batch: dict) -> jax.Array:
    r = params["x"] - batch["target"]
    return 0.5 * r @ batch["hessian"] @ r


TASKS.register(TaskSpec(
    eval_defaults=dict(ood=("long_horizon",)),
    name="quadratic", doc="noisy quadratics of random conditioning (learned optimizers)",
    build=lambda t, split: QuadraticTraining(t.dim, tuple(t.log10_condition), t.noise,
                                             t.batch_size),
    kinds=("training",), evaluator="optimizer",
    options=dict(
        dim=Option(10, ge=1, doc="d, the number of parameters"),
        log10_condition=Option((0.0, 3.0), length=2, check=lambda r: 0 <= r[0] <= r[1],
                               accepts="(low, high), 0 <= low <= high",
                               doc="range of log10 of the condition number"),
        noise=Option(1.0, ge=0, doc="per-example noise of the optimum"),
        batch_size=Option(32, ge=1, doc="B: the batch noise has variance noise^2 / B"))))
