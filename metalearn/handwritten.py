"""Plain JAX meta-learning steps, written by hand: the baseline the engine is timed against.

Each function here is what a researcher would write without metalearn: the MLP forward as
matmuls on the same parameter pytree, ``jax.grad`` for the inner step, ``optax`` for the outer
one, the meta-batch's tasks drawn on device from the same family with the same keys as the
engine (``fold_in(key, step)``, then :func:`metalearn.tasks.sample_batch`). Steps are scanned
with ``lax.scan``; nothing else is logged or checked (no non-finite skipping, no gradient norm,
no curve). Given the engine's initial meta-parameters they follow the engine's run, so they
also check its meta-gradients by value (tests/test_handwritten.py), and
:func:`metalearn.benchmark.bench_handwritten` times them against the engine's chunk in one
process.

Covered: ``maml``, ``fomaml``, ``metasgd``, ``anil`` and ``reptile`` with the ``final``
objective, on an ``mlp`` without normalisation, meta-trained with a constant-step optax
optimizer; anything else is refused with the setting to change.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn.tasks import sample_batch

LEARNERS = ("maml", "fomaml", "metasgd", "anil", "reptile")


def mlp(params, x):
  """The ``mlp`` model's forward pass (``hidden_i`` then ``head``) as plain matmuls."""
  x = x.reshape(x.shape[0], -1)
  layers = sorted((k for k in params if k.startswith("hidden_")), key=lambda k: int(k[7:]))
  for name in layers:
    x = jax.nn.relu(x @ params[name]["kernel"] + params[name]["bias"])
  return x @ params["head"]["kernel"] + params["head"]["bias"]


def _mse(params, x, y):
  return jnp.mean(jnp.square(mlp(params, x) - y))


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses a (validated) config these hand-written steps do not cover, naming the key."""
  problems = []
  if config.learner.name not in LEARNERS:
    problems.append(f"learner.name={config.learner.name!r} (hand-written: {LEARNERS})")
  if config.model.name != "mlp" or config.model.norm != "none":
    problems.append("model: needs name='mlp' with norm='none'")
  if config.task.name != "sinusoid":
    problems.append(f"task.name={config.task.name!r} (hand-written: 'sinusoid', an MSE task)")
  if config.objective.name != "final" and config.learner.name != "reptile":
    problems.append(f"objective.name={config.objective.name!r} (hand-written: 'final')")
  if config.optimizer.schedule != "constant" or config.optimizer.clip_grad_norm:
    problems.append("optimizer: needs schedule='constant' and clip_grad_norm=0")
  expected = "reptile" if config.learner.name == "reptile" else "backprop"
  if config.estimator.name != expected:
    problems.append(f"estimator.name={config.estimator.name!r} (hand-written: {expected!r})")
  if config.baseline:
    problems.append(f"baseline={config.baseline!r} (hand-written: '')")
  if config.curriculum.name:
    problems.append(f"curriculum.name={config.curriculum.name!r} (hand-written: none)")
  if config.learner.name != "reptile" and config.learner.num_inner_steps != 1:
    problems.append("learner.num_inner_steps: hand-written MAML-family steps take one")
  if problems:
    raise ValueError("no hand-written step for this config: " + "; ".join(problems))


def make_meta_gradient(config: ml_collections.ConfigDict) -> Callable:
  """``(theta, episodes) -> (meta_loss, grads)`` of ``config``'s learner on a meta-batch
  (``theta`` as the engine's ``learner.init`` gives it; Reptile: its pseudo-gradient
  ``theta - mean(phi_T)``, with the final query loss)."""
  check_config(config)
  name, lr = config.learner.name, config.learner.inner_lr

  def task_loss(theta, ep):
    p = theta["params"]
    if name == "anil":
      head_grad = jax.grad(lambda h: _mse({**p, "head": h}, ep.support_x, ep.support_y))(
          p["head"])
      adapted = {**p, "head": jax.tree.map(lambda w, g: w - lr * g, p["head"], head_grad)}
    else:
      g = jax.grad(_mse)(p, ep.support_x, ep.support_y)
      if name == "fomaml":
        g = jax.lax.stop_gradient(g)
      if name == "metasgd":
        adapted = jax.tree.map(lambda w, a, g: w - a * g, p, theta["inner_lr"], g)
      else:
        adapted = jax.tree.map(lambda w, g: w - lr * g, p, g)
    return _mse(adapted, ep.query_x, ep.query_y)

  def reptile(theta, eps):
    def adapt(ep):
      def sgd(p, _):
        return jax.tree.map(lambda w, g: w - lr * g, p,
                            jax.grad(_mse)(p, ep.support_x, ep.support_y)), None
      phi = jax.lax.scan(sgd, theta["params"], None, length=config.learner.num_inner_steps)[0]
      return phi, _mse(phi, ep.query_x, ep.query_y)
    phi_B, losses = jax.vmap(adapt)(eps)
    grads = {"params": jax.tree.map(lambda w, a: w - jnp.mean(a, 0), theta["params"], phi_B)}
    return jnp.mean(losses), grads

  if name == "reptile":
    return reptile
  return jax.value_and_grad(lambda th, eps: jnp.mean(jax.vmap(task_loss, (None, 0))(th, eps)))


def make_step(config: ml_collections.ConfigDict, family, key: jax.Array) -> Callable:
  """``step((theta, opt_state), i) -> ((theta, opt_state), meta_loss)``: the outer step ``i``
  of ``config``'s learner, its tasks drawn with ``fold_in(key, i)`` (``opt_state`` of
  ``optax.<optimizer.name>``, as the engine's ``TrainState.opt_state``)."""
  meta_gradient = make_meta_gradient(config)
  opt = getattr(optax, config.optimizer.name)(learning_rate=config.optimizer.learning_rate,
                                              **config.optimizer.kwargs.to_dict())

  def step(carry, i):
    theta, opt_state = carry
    eps = sample_batch(family, jax.random.fold_in(key, i), config.meta_batch_size)
    loss, grads = meta_gradient(theta, eps)
    updates, opt_state = opt.update(grads, opt_state, theta)
    return (optax.apply_updates(theta, updates), opt_state), loss

  return step


def make_chunk(config: ml_collections.ConfigDict, family, key: jax.Array) -> Callable:
  """Jitted ``chunk(theta, opt_state, start, length)`` (``length`` static): outer steps
  ``start .. start + length - 1`` in one ``lax.scan``."""
  step = make_step(config, family, key)

  def chunk(theta, opt_state, start, length):
    return jax.lax.scan(step, (theta, opt_state), start + jnp.arange(length))

  return jax.jit(chunk, static_argnums=3)
