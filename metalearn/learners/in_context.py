"""In-context learners: a sequence model whose inner learning is reading the prompt.

``theta`` are the model's weights; the learner's curve on a prompt of ``N`` examples is the loss
of its prediction of ``y_k`` from ``x_k`` and the ``k`` examples before it, ``k = 0..N-1``
(``T = N - 1`` "inner steps"), from one causal forward pass (:meth:`InContextLearner.curve`;
:func:`metalearn.unroll.unroll` calls it for one-pass learners).

Token layouts (:data:`LAYOUTS`), with ``u(y)`` the label encoding (``[y]`` for regression,
one-hot for classification):

* ``interleaved`` (Garg et al. 2022): ``2N`` tokens ``(x_1, 0), (0, u(y_1)), (x_2, 0), ...``;
  ``y_k`` is read at the token of ``x_k``.
* ``packed`` (Kirsch et al. 2022): ``N`` tokens ``(x_k, u(y_{k-1}))`` (``u(y_0) = 0``); ``y_k``
  is read at token ``k``: half the sequence length.
* ``prefix`` (linear self-attention): context tokens ``(x_i, u(y_i))`` and one query token
  ``(x_k, 0)`` per position, evaluated with the first ``k`` contexts (one pass per ``k``,
  ``vmap``-ed; attention among contexts is not causal, as in von Oswald et al. 2023).

Positions at or beyond a curriculum's ``points`` carry zero loss.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import linen as nn

from metalearn.learners.base import LEARNERS, Learner, LearnerSpec
from metalearn.models import MODELS
from metalearn.registry import ConfigError, Option
from metalearn.tasks import TASKS, Episode

LAYOUTS = ("interleaved", "packed", "prefix")


def encode_labels(y_N: jax.Array, num_classes: int | None) -> jax.Array:
  """``[N, 1]`` regression targets, or ``[N, C]`` one-hot labels."""
  return jax.nn.one_hot(y_N, num_classes) if num_classes else y_N[:, None]


def tokens(layout: str, x_ND: jax.Array, u_NU: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The token sequence of a prompt and where ``y_k`` is read: ``(tokens, read_N)``."""
  N, D = x_ND.shape
  zeros_u, zeros_x = jnp.zeros_like(u_NU), jnp.zeros_like(x_ND)
  if layout == "interleaved":
    xs = jnp.concatenate([x_ND, zeros_u], 1)
    ys = jnp.concatenate([zeros_x, u_NU], 1)
    return jnp.stack([xs, ys], 1).reshape(2 * N, -1), 2 * jnp.arange(N)
  if layout == "packed":
    prev = jnp.concatenate([zeros_u[:1], u_NU[:-1]])
    return jnp.concatenate([x_ND, prev], 1), jnp.arange(N)
  raise ValueError(f"layout {layout!r} has no token sequence; choose one of {LAYOUTS[:2]}")


@dataclasses.dataclass(frozen=True)
class InContextLearner(Learner):
  """A sequence model meta-trained to learn from its context.

  Attributes:
    model: a flax module from :mod:`metalearn.models.sequence` (a
      :class:`~metalearn.models.LinearSelfAttention` needs ``layout='prefix'``).
    family: the prompt family (``num_points``, ``input_shape``, ``prompt_loss``).
    layout: one of :data:`LAYOUTS`.
  """
  model: nn.Module
  family: object
  layout: str = "interleaved"

  one_pass = True

  @property
  def num_inner_steps(self) -> int:
    return self.family.num_points - 1

  def describe(self) -> dict:
    return {"learner": type(self).__name__, "model": type(self.model).__name__,
            "layout": self.layout, "num_inner_steps": self.num_inner_steps}

  @property
  def num_classes(self) -> int | None:
    return self.family.num_classes if self.family.is_classification else None

  def init(self, key: jax.Array):
    """Fresh model weights, shaped by one prompt of the family."""
    k_model, k_task = jax.random.split(key)
    episode = self.family.sample(k_task)
    if self.layout == "prefix":
      u = encode_labels(episode.support_y, self.num_classes)
      ctx = jnp.concatenate([episode.support_x, u], 1)
      return self.model.init(k_model, ctx, ctx[:1], 1)
    toks, _ = tokens(self.layout, episode.support_x,
                     encode_labels(episode.support_y, self.num_classes))
    return self.model.init(k_model, toks)

  def predict_prompt(self, theta, x_ND: jax.Array, y_N: jax.Array) -> jax.Array:
    """Predictions of every ``y_k`` from ``x_k`` and the examples before it: ``[N]`` for
    regression, logits ``[N, C]`` for classification."""
    u = encode_labels(y_N, self.num_classes)
    if self.layout == "prefix":
      ctx = jnp.concatenate([x_ND, u], 1)
      queries = jnp.concatenate([x_ND, jnp.zeros_like(u)], 1)
      out = jax.vmap(lambda q, k: self.model.apply(theta, ctx, q[None], k)[0])(
          queries, jnp.arange(x_ND.shape[0]))
      out = out[:, x_ND.shape[1]:]
    else:
      toks, read = tokens(self.layout, x_ND, u)
      out = self.model.apply(theta, toks)[read]
    return out if self.num_classes else out[:, 0]

  def curve(self, theta, episode: Episode) -> jax.Array:
    """Loss at every context length ``[N]`` (zero past the curriculum's ``points``)."""
    pred = self.predict_prompt(theta, episode.support_x, episode.support_y)
    loss = self.family.prompt_loss(pred, episode.support_y)
    return jnp.where(jnp.arange(loss.shape[0]) < episode.info["points"], loss, 0.0)

  # The Learner contract's step-wise methods: an in-context learner's state is the prompt
  # itself, so unroll() asks for the whole curve at once (``one_pass``).
  def init_state(self, theta, episode: Episode):
    del theta, episode
    return ()

  def step(self, theta, state, episode):
    raise TypeError("an in-context learner has no inner step: its curve comes from "
                    "InContextLearner.curve (unroll() calls it)")

  def query_loss(self, theta, state, episode):
    raise TypeError("an in-context learner's losses come from InContextLearner.curve")

  def predict(self, theta, state, x):
    raise TypeError("an in-context learner predicts from a prompt: use predict_prompt")


def _build(config, family) -> InContextLearner:
  layout = config.learner.layout
  token_dim = family.input_shape[0] + (family.num_classes if family.is_classification else 1)
  tokens = family.num_points * (2 if layout == "interleaved" else 1)
  model = MODELS.get(config.model.name).build(config.model, (token_dim,), family.output_dim,
                                              tokens)
  return InContextLearner(model, family, layout)


def _check(config) -> None:
  layouts = MODELS.get(config.model.name).layouts
  if config.learner.layout not in layouts:
    raise ConfigError(f"learner.layout={config.learner.layout!r} does not go with "
                      f"model.name={config.model.name!r}, which reads the layouts "
                      f"{list(layouts)}")


LEARNERS.register(LearnerSpec(
    name="in_context", doc="a sequence model meta-trained to learn from its prompt",
    build=_build, families=("prompts",), model="sequence", provides=frozenset(),
    check=_check, horizon=lambda config: TASKS.get(config.task.name).steps(config.task),
    options=dict(layout=Option("interleaved", choices=LAYOUTS, doc="token layout (see "
                                                                   "above)"))))
