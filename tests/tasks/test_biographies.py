"""The biographies task family: a function of its seed, answers that match the biography read,
disjoint splits, and the token loss and answer accuracy by value."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from metalearn.lm import corpus, tokenizer
from metalearn.registry import ConfigError
from metalearn.tasks import TASKS
from metalearn.tasks.biographies import BiographyFamily, build_family, token_loss


def _task(**overrides):
  spec = TASKS.get("biographies")
  t = {k: o.default for k, o in spec.options.items()}
  t.update(num_people=12, eval_people=5, **overrides)
  return ml_collections.ConfigDict(t)


def _text(tok, ids):
  return tok.decode([int(i) for i in ids if i >= 0], skip_special=True)


def test_a_function_of_its_seed():
  a, b = build_family(_task(), "train"), build_family(_task(), "train")
  other = build_family(_task(seed=1), "train")
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.support_x, other.support_x)
  e1, e2 = a.sample(jax.random.key(3)), b.sample(jax.random.key(3))
  for x, y in zip(jax.tree.leaves(e1), jax.tree.leaves(e2)):
    np.testing.assert_array_equal(x, y)


def test_every_answer_is_in_the_biography_read():
  tok = tokenizer.byte_level()
  family = build_family(_task(), "test")
  people = corpus.people(12 + 2 * 5, 0)[17:]  # test: after train (12) and validation (5)
  assert family.num_people == len(people) == 5
  for p, person in enumerate(people):
    # the reading rows' targets are the inputs shifted by one, padding unscored
    x, y = np.asarray(family.support_x[p]), np.asarray(family.support_y[p])
    scored = y >= 0
    readings = [_text(tok, [row_x[0], *row_y[s]]) for row_x, row_y, s in zip(x, y, scored)]
    np.testing.assert_array_equal(y[:, :-1][scored[:, 1:]], x[:, 1:][scored[:, 1:]])
    assert (x[~scored] == tok.pad_id).all() and scored[:, 0].all()
    assert len(set(readings)) == 2 and all(person["name"] in r for r in readings)
    for q, attribute in enumerate(corpus.TEMPLATES):
      question = _text(tok, family.query_x[p, q])
      answer = _text(tok, family.query_y[p, q]).strip()
      expected_q, expected_a = corpus.question(person, attribute)
      assert question.startswith(expected_q) and answer == expected_a
      fact = answer.rstrip(".")
      assert all(fact in r for r in readings), (fact, readings)


def test_splits_hold_different_people_and_attributes_shorten_rows():
  sizes = {s: build_family(_task(), s).num_people for s in ("train", "validation", "test")}
  assert sizes == {"train": 12, "validation": 5, "test": 5}
  train, valid = build_family(_task(), "train"), build_family(_task(), "validation")
  tok, everyone = tokenizer.byte_level(), corpus.people(22, 0)
  for family, first in ((train, 0), (valid, 12)):  # people by index: train, then validation
    for p in range(family.num_people):
      asked = corpus.question(everyone[first + p], "birth")[0]
      assert _text(tok, family.query_x[p, 0]).startswith(asked)
  short = build_family(_task(attributes=("city", "field"), num_query=2), "train")
  assert short.query_x.shape[1] == 2 and short.input_shape[0] < train.input_shape[0] / 2
  with pytest.raises(ConfigError, match="max_len"):
    build_family(_task(max_len=20), "train")
  with pytest.raises(ConfigError, match="splits"):
    build_family(_task(), "holdout")


def test_token_loss_and_answer_accuracy_by_value():
  # two rows of 3 positions over a 2-token vocabulary; -1: not scored
  logits = jnp.log(jnp.asarray([[[0.75, 0.25], [0.5, 0.5], [0.1, 0.9]],
                                [[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]]))
  targets = jnp.asarray([[0, -1, 1], [1, 1, -1]])
  nll = -np.log([0.75, 0.9, 0.8, 0.4])
  np.testing.assert_allclose(token_loss(logits, targets), nll.mean(), rtol=1e-6)
  weights = jnp.asarray([[2.0, 5.0, 1.0], [1.0, 0.5, 9.0]])
  np.testing.assert_allclose(token_loss(logits, targets, weights),
                             (2 * nll[0] + nll[1] + nll[2] + 0.5 * nll[3]) / 4, rtol=1e-6)
  family = BiographyFamily(*(jnp.zeros((1, 1, 3), jnp.int32),) * 4, num_query=1,
                           vocab_size=2)
  m = family.metrics(logits, targets)
  # row 0: both scored tokens right; row 1: the second scored token wrong
  assert float(m["token_accuracy"]) == pytest.approx(3 / 4)
  assert float(m["answer_accuracy"]) == pytest.approx(1 / 2)
  assert float(m["loss"]) == pytest.approx(nll.mean(), rel=1e-6)
