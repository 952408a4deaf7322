"""Next-token training of the decoder LM: the loss, and one jitted optimizer step as a pure
function of explicit state.

The model is split once (``nnx.split``) into a static ``graphdef`` and its parameters; a
:class:`TrainState` holds the parameters, the optax state and the step. :func:`make_step`
returns ``step(state, batch) -> (state, metrics)``, a pure function of pytrees: jit it with the
parameters' shardings (:func:`shardings`) and the batch split over ``(data, fsdp)``, and XLA
places the FSDP gathers and tensor-parallel reductions.

A batch is ``{"tokens": int [B, S + 1], "weights": float [B, S + 1]}``: position ``t`` is
trained to predict ``tokens[:, t + 1]`` with weight ``weights[:, t + 1]`` (0 for padding and,
in fine-tuning, for prompt tokens).
"""

from typing import Any, Callable, NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp
import optax

from metalearn.lm.model import Transformer
from metalearn.lm import sharding as sharding_lib


class TrainState(NamedTuple):
  step: jax.Array
  params: Any
  opt_state: Any


def token_losses(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-token cross-entropy ``[B, S]`` of float32 ``logits`` ``[B, S, V]``."""
  logz = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  return logz - picked


def loss_and_metrics(params, graphdef, batch) -> tuple[jax.Array, dict]:
  """The weighted mean next-token loss of ``batch`` and its metrics."""
  model = nnx.merge(graphdef, params)
  tokens, weights = batch["tokens"], batch["weights"].astype(jnp.float32)
  logits, _ = model(tokens[:, :-1], attention_mask=weights[:, :-1] > 0)
  losses = token_losses(logits, tokens[:, 1:])
  w = weights[:, 1:]
  count = jnp.sum(w)
  loss = jnp.sum(losses * w) / jnp.maximum(count, 1.0)
  correct = jnp.sum((jnp.argmax(logits, -1) == tokens[:, 1:]) * w)
  return loss, {"loss": loss, "accuracy": correct / jnp.maximum(count, 1.0), "tokens": count}


def init(model: Transformer, optimizer: optax.GradientTransformation,
         mesh: jax.sharding.Mesh | None = None):
  """``(graphdef, TrainState)`` of a model (on ``mesh``, if given, as :func:`create` and
  :func:`~metalearn.lm.hf.load` place it) and an optimizer whose state is created in the
  shardings of :func:`state_shardings`."""
  graphdef, params = nnx.split(model, nnx.Param)
  if mesh is None:
    return graphdef, TrainState(jnp.zeros((), jnp.int32), params,
                                jax.jit(optimizer.init)(params))
  abstract = TrainState(jax.ShapeDtypeStruct((), jnp.int32), params,
                        jax.eval_shape(optimizer.init, params))
  target = state_shardings(abstract, mesh, optimizer)
  opt_state = jax.jit(optimizer.init, out_shardings=target.opt_state)(params)
  return graphdef, TrainState(jax.device_put(jnp.zeros((), jnp.int32), target.step), params,
                              opt_state)


def make_step(graphdef, optimizer: optax.GradientTransformation) -> Callable:
  """``step(state, batch) -> (state, metrics)``: one optimizer step. A non-finite loss or
  gradient leaves the state unchanged and reports ``skipped = 1``."""

  def step(state: TrainState, batch):
    (loss, metrics), grads = jax.value_and_grad(loss_and_metrics, has_aux=True)(
        state.params, graphdef, batch)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    new = TrainState(state.step + 1, params, opt_state)
    new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, state)
    return new, {**metrics, "grad_norm": grad_norm, "skipped": 1 - finite.astype(jnp.int32)}

  return step


def state_shardings(state: TrainState, mesh: jax.sharding.Mesh,
                    optimizer: optax.GradientTransformation) -> TrainState:
  """The :class:`NamedSharding` tree of ``state``: parameters by their logical axes, the
  optimizer's per-parameter moments like their parameters (``optax.tree_map_params``), every
  other leaf replicated."""
  params = sharding_lib.param_shardings(state.params, mesh)
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  opt = optax.tree_map_params(optimizer, lambda _, s: s, state.opt_state, params,
                              transform_non_params=lambda _: replicated,
                              is_leaf=lambda x: isinstance(x, nnx.Variable))
  return TrainState(replicated, params, opt)


def batch_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """Sequences split over ``(data, fsdp)``; positions whole."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
      tuple(a for a in (sharding_lib.DATA, sharding_lib.FSDP) if mesh.shape[a] > 1) or None))
