"""What ``optim_step`` runs, chosen through the Tinker SDK's own extension points.

SDK 0.38 picks an optimizer family when the model is created
(``create_lora_training_client(..., optimizer=OptimizerConfig)``, a ``type`` plus any fields)
and takes per-step hyperparameters (``optim_step(AdamParams)`` or an ``OptimParamsBase`` with
the same ``type``). The families served:

* ``adamw`` (default; ``types.AdamOptimizerConfig()``): Tinker's AdamW, per-step
  ``types.AdamParams`` (learning rate, betas, eps, decoupled weight decay, clipping);
* ``optax``: any optax optimizer taking ``learning_rate``, e.g.
  ``OptimizerConfigBase(type="optax", name="lion", b1=0.95)`` (fields besides ``name`` are
  its keyword arguments), per-step ``OptimParamsBase(type="optax", learning_rate=3e-4,
  grad_clip_norm=1.0)``;
* ``learned``: a metalearn learned optimizer exported with
  :func:`metalearn.learners.export.save`, ``OptimizerConfigBase(type="learned", path=DIR,
  num_steps=1000)``, per-step ``OptimParamsBase(type="learned")`` (it takes no
  hyperparameters: the rule is its own schedule); rules that read the loss get the last
  ``forward_backward``'s.

(``OptimizerConfigBase`` and ``OptimParamsBase`` are the SDK's open base classes, in
``tinker.types.optimizer``; both accept extra fields.)

``dimuon`` (the SDK's other built-in family) is refused with a clear error.

Per-step hyperparameters are injected into the compiled step (``optax.inject_hyperparams``),
so changing them recompiles nothing.
"""

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from tinker import types
from tinker.types.optimizer import OptimParamsBase


class OptimizerError(ValueError):
  """An optimizer config or per-step params that cannot be served."""


def _clip(grads, clip):
  norm = optax.tree.norm(grads)
  scale = jnp.where(clip > 0, jnp.minimum(1.0, clip / (norm + 1e-12)), 1.0)
  return jax.tree.map(lambda g: g * scale, grads), norm


@dataclasses.dataclass(frozen=True)
class Family:
  """An optimizer family: ``tx`` (with ``injected``, an ``optax.inject_hyperparams``
  transformation whose hyperparameters are ``hyper``'s keys besides ``clip``),
  ``hyper(optim_params) -> dict`` and whether its update reads the loss."""
  type: str
  tx: optax.GradientTransformation
  hyper: Callable[[Any], dict]
  injected: bool = True
  needs_loss: bool = False

  def init(self, params):
    state = self.tx.init(params)
    if self.injected:  # strongly typed, as the values each step injects: one compiled step
      for k, v in state.hyperparams.items():
        state.hyperparams[k] = jnp.asarray(v, jnp.float32)
    return state

  def update(self, params, state, grads, hp, loss):
    """One step: ``(params, state, grad_norm)``."""
    grads, norm = _clip(grads, hp.get("clip", jnp.float32(0)))
    if self.injected:
      for k, v in hp.items():
        if k != "clip":
          state.hyperparams[k] = v
    extra = {"loss": loss} if self.needs_loss else {}
    updates, state = self.tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state, norm


def _f32(d: dict) -> dict:
  return {k: jnp.asarray(v, jnp.float32) for k, v in d.items()}


def _adamw() -> Family:
  def hyper(p):
    if not isinstance(p, types.AdamParams):
      raise OptimizerError(f"this model's optimizer is adamw: optim_step takes "
                           f"types.AdamParams, got {type(p).__name__}")
    return _f32({"learning_rate": p.learning_rate, "b1": p.beta1, "b2": p.beta2,
                 "eps": p.eps, "weight_decay": p.weight_decay, "clip": p.grad_clip_norm})
  tx = optax.inject_hyperparams(optax.adamw)(learning_rate=1e-4, b1=0.9, b2=0.95, eps=1e-12,
                                             weight_decay=0.0)
  return Family("adamw", tx, hyper)


def _extra(config) -> dict:
  return {k: v for k, v in (config.model_extra or {}).items()}


def _params_of(p, family: str) -> dict:
  if not isinstance(p, OptimParamsBase) or p.type != family:
    raise OptimizerError(f"this model's optimizer family is {family!r}: optim_step takes "
                         f"OptimParamsBase(type={family!r}, ...), got {p!r}")
  return _extra(p)


def _optax(config) -> Family:
  fields = _extra(config)
  name = fields.pop("name", None)
  fn = getattr(optax, name, None) if isinstance(name, str) else None
  if fn is None or not callable(fn) or "learning_rate" not in inspect.signature(fn).parameters:
    raise OptimizerError(f"optimizer type='optax' needs name= an optax optimizer taking "
                         f"learning_rate (e.g. 'adamw', 'lion', 'sgd'), got {name!r}")
  if "learning_rate" in fields:
    raise OptimizerError("the learning rate is per step: pass it to optim_step "
                         "(OptimParamsBase(type='optax', learning_rate=...)), not to the "
                         "optimizer config")
  try:
    tx = optax.inject_hyperparams(fn)(learning_rate=1e-4, **fields)
  except TypeError as e:
    raise OptimizerError(f"optax.{name} does not take {sorted(fields)}: {e}") from None

  def hyper(p):
    given = _params_of(p, "optax")
    unknown = sorted(set(given) - {"learning_rate", "grad_clip_norm"})
    if unknown or "learning_rate" not in given:
      raise OptimizerError(f"OptimParamsBase(type='optax') takes learning_rate (required) and "
                           f"grad_clip_norm; got {sorted(given)}")
    return _f32({"learning_rate": given["learning_rate"],
                 "clip": given.get("grad_clip_norm", 0.0)})
  return Family("optax", tx, hyper)


def _learned(config) -> Family:
  from metalearn.learners import export  # pylint: disable=g-import-not-at-top
  fields = _extra(config)
  if "path" not in fields:
    raise OptimizerError("optimizer type='learned' needs path= a directory written by "
                         "metalearn.learners.export.save")
  unknown = sorted(set(fields) - {"path", "num_steps"})
  if unknown:
    raise OptimizerError(f"optimizer type='learned' takes path and num_steps, not {unknown}")
  try:
    rule, _ = export.load(fields["path"])
  except (FileNotFoundError, ValueError) as e:
    raise OptimizerError(f"learned optimizer at {fields['path']!r} cannot be loaded: {e}") \
        from None
  tx = export.load_optax(fields["path"], num_steps=int(fields.get("num_steps", 1000)))

  def hyper(p):
    given = _params_of(p, "learned")
    if given:
      raise OptimizerError(f"OptimParamsBase(type='learned') takes no hyperparameters (the "
                           f"rule is its own schedule); got {sorted(given)}")
    return {}
  return Family("learned", tx, hyper, injected=False, needs_loss=rule.needs_loss)


def make(config: types.OptimizerConfig | None) -> Family:
  """The family ``config`` selects (``None``: adamw)."""
  kind = "adamw" if config is None else config.type
  if kind == "adamw":
    return _adamw()
  if kind == "optax":
    return _optax(config)
  if kind == "learned":
    return _learned(config)
  if kind == "dimuon":
    raise OptimizerError("the dimuon optimizer family is not served here: use adamw, "
                         "type='optax' (e.g. name='lion') or type='learned'")
  raise OptimizerError(f"optimizer type {kind!r} is not served (families: adamw, optax, "
                       "learned)")
