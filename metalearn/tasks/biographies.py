"""Reading about a person, then answering questions about them: few-shot text episodes for
language-model learners (``task.name='biographies'``).

A task is one made-up person (:func:`metalearn.lm.corpus.people`: birth date and city,
university, field, employer and its city). The support set is ``num_support`` renderings of
their biography (each fact in a random paraphrase, sentences after the first in random order;
:func:`metalearn.lm.corpus.biography`): what a fine-tuning learner reads, one inner step per
row. The query set is ``num_query`` of the person's questions, drawn per episode, e.g.
``"Where was Ada Turing born? Lisbon."``, scored on the answer's tokens only: the curve says
how much of what was read can be recalled.

Token layout (every text episode family's, :func:`token_loss`): ``x`` holds input token ids
``[rows, L]``, ``y`` the next-token targets ``[rows, L]`` with ``-1`` where no loss is taken
(padding; a question's prompt). A reading row is scored everywhere but padding.

People are split by index: ``train`` (``num_people``), then ``validation`` and ``test``
(``eval_people`` each): an evaluation split holds people never read in meta-training. Names and
attribute values come from the small lists in :mod:`metalearn.lm.corpus` (no download). Text is
tokenised on the host once, with ``tokenizer`` (a model directory's ``tokenizer.json``) or, by
default, one token per byte.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.lm import corpus
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, Episode, EpisodeFamily, TaskSpec

SPLITS = ("train", "validation", "test")


def token_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array | None = None
               ) -> jax.Array:
  """Mean next-token cross-entropy over the scored positions (``targets >= 0``), each position
  optionally weighted (``weights`` of ``targets``' shape): ``sum(w * -log p) / #scored``."""
  scored = targets >= 0
  logp = jax.nn.log_softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), -1)
  nll = -jnp.take_along_axis(logp, jnp.maximum(targets, 0)[..., None], axis=-1)[..., 0]
  w = scored.astype(nll.dtype) if weights is None else jnp.where(scored, weights, 0.0)
  return jnp.sum(w * nll) / jnp.maximum(jnp.sum(scored), 1)


def token_kl(logits: jax.Array, reference: jax.Array, targets: jax.Array) -> jax.Array:
  r"""Mean over the scored positions (``targets >= 0``) of :math:`KL(p_{ref} \| p)`, the
  divergence of ``logits``' next-token distributions from ``reference``'s."""
  f32 = lambda a: a.astype(jnp.promote_types(a.dtype, jnp.float32))
  logp, logq = jax.nn.log_softmax(f32(logits), -1), jax.nn.log_softmax(f32(reference), -1)
  kl = jnp.sum(jnp.exp(logq) * (logq - logp), -1)
  scored = targets >= 0
  return jnp.sum(jnp.where(scored, kl, 0.0)) / jnp.maximum(jnp.sum(scored), 1)


class TokenEpisodes(EpisodeFamily):
  """What every family of token-row episodes shares: ``support_x [groups, rows, L]`` and a
  ``vocab_size``; exact answers are the primary metric."""
  support_x: jax.Array
  vocab_size: int

  primary_metric = "answer_accuracy"

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.support_x.shape[2:])

  @property
  def output_dim(self) -> int:
    return self.vocab_size


def check_num_query(config, questions: int) -> None:
  """``task.num_query`` and ``eval.num_query`` ask at most a chapter's ``questions``."""
  for key, value in (("task.num_query", config.task.num_query),
                     ("eval.num_query", config.eval.get("num_query", 1))):
    if value > questions:
      raise ConfigError(f"{key}={value}: a chapter has {questions} questions; at most that")


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["support_x", "support_y", "query_x", "query_y"],
                   meta_fields=["num_query", "vocab_size"])
@dataclasses.dataclass(frozen=True)
class BiographyFamily(TokenEpisodes):
  """Episodes of one person each (see the module docstring).

  Attributes:
    support_x, support_y: ``int32 [people, num_support, L]`` reading rows (inputs, targets).
    query_x, query_y: ``int32 [people, questions, Lq]`` question rows, answers scored.
    num_query: questions drawn per episode (of the person's ``questions``).
    vocab_size: the tokenizer's ids (the model's embedding needs at least as many rows).
  """
  support_x: jax.Array
  support_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  num_query: int
  vocab_size: int

  @property
  def num_people(self) -> int:
    return self.support_x.shape[0]

  def sample(self, key: jax.Array) -> Episode:
    """A person drawn uniformly; ``num_query`` of their questions in random order."""
    k_person, k_questions = jax.random.split(key)
    p = jax.random.randint(k_person, (), 0, self.num_people)
    q = jax.random.permutation(k_questions, self.query_x.shape[1])[:self.num_query]
    return Episode(self.support_x[p], self.support_y[p], self.query_x[p][q],
                   self.query_y[p][q], {"person": p, "questions": q})

  def loss(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """:func:`token_loss` of logits ``[rows, L, V]``."""
    return token_loss(predictions, targets)

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """:func:`answer_metrics`."""
    return answer_metrics(predictions, targets)


def answer_metrics(logits: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
  """``loss`` (:func:`token_loss`); ``token_accuracy`` (greedy next token right, over scored
  positions); ``answer_accuracy``: the share of rows with a scored token whose every scored
  token is right (a question answered exactly)."""
  scored = targets >= 0
  right = (jnp.argmax(logits, -1) == targets) & scored
  rows = jnp.any(scored, axis=-1)
  exact = jnp.all(right | ~scored, axis=-1) & rows
  return {"loss": token_loss(logits, targets),
          "token_accuracy": jnp.sum(right) / jnp.maximum(jnp.sum(scored), 1),
          "answer_accuracy": jnp.sum(exact) / jnp.maximum(jnp.sum(rows), 1)}


def pad_rows(rows: list[tuple[list[int], int]], length: int, pad_id: int):
  """``(x, y)`` ``[N, length]`` of token rows ``(ids, scored_from)``: inputs and next-token
  targets, ``-1`` (no loss) before ``scored_from`` and on padding."""
  x = np.full((len(rows), length), pad_id, np.int32)
  y = np.full((len(rows), length), -1, np.int32)
  for i, (ids, scored_from) in enumerate(rows):
    n = len(ids) - 1
    x[i, :n] = ids[:-1]
    y[i, scored_from:n] = ids[scored_from + 1:]
  return x, y


def question_row(tok, question: str, answer: str) -> tuple[list[int], int]:
  """A question row for :func:`pad_rows`: the question, a space and the answer, scored from the
  question's last token (whose target is the answer's first)."""
  prompt = tok.encode(question, bos=True)
  return prompt + tok.encode(" " + answer), len(prompt) - 1


def load_tokenizer(path: str):
  from metalearn.lm import tokenizer  # pylint: disable=g-import-not-at-top
  return tokenizer.load(path) if path else tokenizer.byte_level()


def build_family(t, split: str) -> BiographyFamily:
  """The family of task config ``t`` (see the options) on ``split``."""
  if split not in SPLITS:
    raise ConfigError(f"task 'biographies' has splits {SPLITS}, not {split!r} (eval.split)")
  start = {"train": 0, "validation": t.num_people, "test": t.num_people + t.eval_people}[split]
  count = t.num_people if split == "train" else t.eval_people
  everyone = corpus.people(t.num_people + 2 * t.eval_people, t.seed)
  people = everyone[start:start + count]
  tok = load_tokenizer(t.tokenizer)
  pad = tok.pad_id if tok.pad_id is not None else 0
  rng = np.random.RandomState(t.seed + 1 + SPLITS.index(split))
  reading, questions = [], []
  for person in people:
    for _ in range(t.num_support):
      ids = tok.encode(corpus.biography(person, rng, t.attributes), bos=True)
      reading.append((ids, 0))
    for attribute in t.attributes:
      questions.append(question_row(tok, *corpus.question(person, attribute)))
  longest = max(len(ids) - 1 for ids, _ in reading)
  if t.max_len and longest > t.max_len:
    raise ConfigError(f"task.max_len={t.max_len}: a biography takes {longest} tokens with "
                      "this tokenizer; raise max_len (0: the longest) or read fewer "
                      "task.attributes")
  sx, sy = pad_rows(reading, t.max_len or longest, pad)
  qx, qy = pad_rows(questions, max(len(ids) - 1 for ids, _ in questions), pad)
  shape = lambda a, per: jnp.asarray(a.reshape(len(people), per, -1))
  return BiographyFamily(shape(sx, t.num_support), shape(sy, t.num_support),
                         shape(qx, len(t.attributes)), shape(qy, len(t.attributes)),
                         t.num_query, tok.vocab_size)


def _check(config) -> None:
  t = config.task
  if t.num_query > len(t.attributes):
    raise ConfigError(f"task.num_query={t.num_query}: a person has {len(t.attributes)} "
                      f"questions (one per task.attributes entry); at most that many")
  if config.eval.get("num_query", 1) > len(t.attributes):
    raise ConfigError(f"eval.num_query={config.eval.num_query}: a person has "
                      f"{len(t.attributes)} questions; set eval.num_query <= that")


TASKS.register(TaskSpec(
    name="biographies", doc="read a made-up person's biography, answer questions about them",
    build=build_family, kinds=("episodes",), target="tokens", inputs="sequence",
    evaluator="few_shot", check=_check,
    eval_defaults=dict(num_query=1),
    options=dict(
        num_people=Option(1000, ge=1, doc="people of the train split"),
        eval_people=Option(200, ge=1, doc="people of each of validation and test"),
        num_support=Option(2, ge=1, doc="renderings of the biography read (rows)"),
        num_query=Option(6, ge=1, doc="questions asked per episode"),
        attributes=Option(tuple(corpus.TEMPLATES), length=(1, None),
                          choices=tuple(corpus.TEMPLATES), doc="facts in a biography (the "
                          "birth sentence, if listed, comes first) and asked about"),
        max_len=Option(0, ge=0, doc="reading rows' length in tokens (0: the longest)"),
        tokenizer=Option("", doc="a directory with tokenizer.json ('': one token per byte)"),
        seed=Option(0, ge=0, lt=2**31, doc="seed of the people and their renderings"))))
