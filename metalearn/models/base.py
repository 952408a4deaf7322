"""The model contract and registry: networks a learner adapts, sequence models that read.

A model's module registers a :class:`ModelSpec` in :data:`MODELS` (the config's
``model.name``). Models come in four kinds (:attr:`ModelSpec.kind`):

* ``"network"``: ``build(config, input_shape, out_dim)`` gives a :class:`Network`, a pair
  ``(init_fn, apply_fn)`` of pure functions over a plain parameter pytree whose classifier
  layer is ``head`` (``out_dim=None``: an embedding without head). Gradient-based learners,
  ProtoNets and textbook readers adapt them;
* ``"sequence"``: ``build(config, input_shape, out_dim, max_len=L)`` gives a flax module that
  maps one prompt's tokens ``[L, D]`` to outputs ``[L, out_dim]`` (in-context learners);
* ``"lm"``: ``build(config, vocab_size)`` gives a decoder language model
  (:class:`metalearn.lm.Transformer`) whose embedding has at least ``vocab_size`` rows (the
  task's tokenizer), for learners that fine-tune one;
* ``"none"``: no model of its own (learned optimizers train the task's network).
"""

import dataclasses
from typing import Callable, NamedTuple, Sequence

import jax
import ml_collections

from metalearn.registry import Component, ConfigError, Registry

KINDS = ("network", "sequence", "lm", "none")


class Network(NamedTuple):
  """A network as pure functions: ``init_fn(key) -> params``, ``apply_fn(params, x) ->
  outputs`` (``x`` with a leading batch axis)."""
  init_fn: Callable[[jax.Array], dict]
  apply_fn: Callable[[dict, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec(Component):
  """A registered model.

  Attributes:
    build: see the module docstring (by kind).
    kind: one of :data:`KINDS`.
    inputs: what a network reads, from ``"vector"``, ``"image"`` (a task family's
      :attr:`~metalearn.tasks.TaskSpec.inputs`).
    layouts: the token layouts a sequence model reads (:mod:`metalearn.learners.in_context`).
  """
  build: Callable
  kind: str
  inputs: tuple[str, ...] = ("vector", "image")
  layouts: tuple[str, ...] = ()

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"model {self.name!r}: kind must be one of {KINDS}")


MODELS: Registry[ModelSpec] = Registry("model", "metalearn.models", ModelSpec)


def make(model_config: ml_collections.ConfigDict, input_shape: Sequence[int],
         out_dim: int | None) -> Network:
  """The network ``model_config.name`` names for inputs of ``input_shape`` (no batch axis)."""
  spec = MODELS.get(model_config.name, "model.name")
  if spec.kind != "network":
    raise ConfigError(f"model {spec.name!r} is a {spec.kind!r} model, not a network")
  return spec.build(model_config, tuple(input_shape), out_dim)
