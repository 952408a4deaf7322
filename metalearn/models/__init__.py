"""Models: networks the learners adapt (MLP, Conv-4) and sequence models that read prompts
(transformer, LSTM, linear self-attention). Each module registers its models in
:data:`MODELS` (the config's ``model.name``); :mod:`metalearn.models.base` has the contract."""

from metalearn.models.base import MODELS, ModelSpec, Network, make
from metalearn.models.networks import CONV_IMPLS, NORMS, POOLS, MLP, Conv4, Norm
from metalearn.models.sequence import LSTM, LinearSelfAttention, Transformer

__all__ = ["CONV_IMPLS", "Conv4", "LSTM", "LinearSelfAttention", "MLP", "MODELS", "ModelSpec",
           "NORMS", "Network", "Norm", "POOLS", "Transformer", "make"]
