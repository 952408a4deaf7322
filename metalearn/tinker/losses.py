"""Tinker's built-in losses as pure JAX functions of per-token log-probabilities.

Each loss takes the training policy's log-probabilities of the target tokens
(``target_logprobs`` ``[N]``, differentiable), the datum's ``loss_fn_inputs`` as arrays
(``target_tokens``, and by loss ``weights``, ``logprobs``: the sampler's, ``advantages``) and
the ``loss_fn_config`` dict, and returns the datum's loss (a *sum* over tokens, as Tinker
reports ``loss:sum``) with per-token outputs. Formulas and defaults are Tinker's
(tinker-docs.thinkingmachines.ai/tinker/losses):

* ``cross_entropy``: ``-sum(weights * logp)``;
* ``importance_sampling``: ``-sum(r * A)``, ``r = exp(logp - logq)``;
* ``ppo``: ``-sum(min(r * A, clip(r, low, high) * A))``, thresholds 0.8 and 1.2;
* ``cispo``: ``-sum(sg(clip(r, low, high)) * logp * A)``, thresholds 0 and 4 (one-sided);
* ``dro``: ``-sum(logp * A - beta / 2 * (logp - logq) ** 2)``, ``beta`` 0.05.

A loss is a component picked by name (:data:`LOSSES`); an unknown name, a missing input or an
unknown config key raises :class:`LossError` naming it. Beyond Tinker, a :class:`Loss` of one's
own (``Loss(name, inputs, defaults, fn)`` with ``fn`` in JAX) goes wherever a name does: the
training client compiles it into its one forward + backward pass, as it does the built-ins.
"""

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp


class LossError(ValueError):
  """A loss name, input or config that cannot be used."""


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a compiled program's key
class Loss:
  """A built-in loss: its inputs (besides ``target_tokens``), config defaults and function
  ``fn(target_logprobs, inputs, config) -> per-token loss [N]``."""
  name: str
  inputs: tuple[str, ...]
  defaults: Mapping[str, float]
  fn: Callable


def _ratio(logp, inputs):
  return jnp.exp(logp - inputs["logprobs"])


def _cross_entropy(logp, inputs, config):
  del config
  return -inputs["weights"] * logp


def _importance_sampling(logp, inputs, config):
  del config
  return -_ratio(logp, inputs) * inputs["advantages"]


def _ppo(logp, inputs, config):
  r, a = _ratio(logp, inputs), inputs["advantages"]
  clipped = jnp.clip(r, config["clip_low_threshold"], config["clip_high_threshold"])
  return -jnp.minimum(r * a, clipped * a)


def _cispo(logp, inputs, config):
  r = _ratio(logp, inputs)
  coef = jax.lax.stop_gradient(jnp.clip(r, config["clip_low_threshold"],
                                        config["clip_high_threshold"]))
  return -coef * logp * inputs["advantages"]


def _dro(logp, inputs, config):
  quadratic = (logp - inputs["logprobs"]) ** 2
  return -(logp * inputs["advantages"] - 0.5 * config["beta"] * quadratic)


LOSSES: dict[str, Loss] = {l.name: l for l in (
    Loss("cross_entropy", ("weights",), {}, _cross_entropy),
    Loss("importance_sampling", ("logprobs", "advantages"), {}, _importance_sampling),
    Loss("ppo", ("logprobs", "advantages"),
         {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}, _ppo),
    Loss("cispo", ("logprobs", "advantages"),
         {"clip_low_threshold": 0.0, "clip_high_threshold": 4.0}, _cispo),
    Loss("dro", ("logprobs", "advantages"), {"beta": 0.05}, _dro),
)}


def get(name: "str | Loss") -> Loss:
  """The built-in loss ``name``; a :class:`Loss` (a custom loss in JAX) is itself."""
  if isinstance(name, Loss):
    return name
  if name not in LOSSES:
    raise LossError(f"loss_fn {name!r} is not a built-in loss (built in: "
                    f"{', '.join(sorted(LOSSES))}; for another loss pass a losses.Loss "
                    "written in JAX, or use forward_backward_custom)")
  return LOSSES[name]


def config_for(name: str, config: Mapping[str, float] | None) -> dict:
  """``loss_fn_config`` completed with the loss's defaults; unknown keys refused."""
  loss = get(name)
  config = dict(config or {})
  unknown = sorted(set(config) - set(loss.defaults))
  if unknown:
    raise LossError(f"loss_fn_config keys {unknown} are not options of {loss.name!r} (options: "
                    f"{sorted(loss.defaults) or 'none'})")
  return {**loss.defaults, **{k: float(v) for k, v in config.items()}}


def check_inputs(name: str, inputs: Mapping[str, object], where: str = "datum") -> None:
  """Refuses a datum without the inputs ``name`` reads."""
  loss = get(name)
  missing = [k for k in ("target_tokens",) + loss.inputs if k not in inputs]
  if missing:
    raise LossError(f"{where}: loss_fn {loss.name!r} needs loss_fn_inputs {missing} (it reads "
                    f"{['target_tokens', *loss.inputs]})")


def token_losses(name: str, target_logprobs: jax.Array, inputs: Mapping[str, jax.Array],
                 config: Mapping[str, float]) -> jax.Array:
  """Per-token losses ``[N]`` (their sum is the datum's loss)."""
  return get(name).fn(target_logprobs, inputs, config)
