"""A teacher's book lengths: BookPrefix episodes, and the reader stopping past them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn import models
from metalearn.curriculum.steering import make_steering
from metalearn.learners import SequentialLearner
from metalearn.tasks import TextbookRegression
from metalearn.unroll import unroll

C, E = 3, 2
BOOK = TextbookRegression(num_chapters=C, exercises_per_chapter=E, batch_size=4, num_query=5)


class _Model:
  hidden, norm, name = (8,), "none", "mlp"


@functools.lru_cache
def _learner():
  init_fn, apply_fn = models.make(_Model, BOOK.input_shape, BOOK.output_dim)
  return SequentialLearner(init_fn, apply_fn, BOOK.loss, 0.05)


def test_teacher_arms_are_book_lengths():
  assert BOOK.task_space == ("discrete", C)
  assert make_steering("tscl", BOOK).teacher.space == ("discrete", C)
  short = BOOK.at_task(jnp.int32(0))
  assert int(short.active_chapters) == 1 and short.num_steps == C * E  # same shapes
  full = jax.jit(lambda a: BOOK.at_task(a).sample(jax.random.key(0)))(jnp.int32(C - 1))
  plain = jax.jit(BOOK.sample)(jax.random.key(0))
  np.testing.assert_array_equal(full.support_x, plain.support_x)  # the same book, cut or not
  assert int(full.info["active_chapters"]) == C


def test_reader_stops_after_the_active_chapters_and_scores_only_them():
  learner = _learner()
  theta = jax.jit(learner.init)(jax.random.key(1))
  episode = jax.jit(lambda a: BOOK.at_task(a).sample(jax.random.key(2)))(
      jnp.int32(1))  # chapters 0 and 1 only
  plain = episode._replace(info={k: v for k, v in episode.info.items() if k != "active_chapters"})
  run = lambda ep: unroll(learner, theta, learner.init_state(theta, ep), ep, C * E,
                          measure=lambda t, s, e: (s.weights, learner.query_loss(t, s, e)))[1]
  (weights_cut, curve_cut), (weights_full, curve_full) = run(episode), run(plain)
  # identical while reading chapters 0-1; frozen from the end of chapter 1 on
  for a, b in zip(jax.tree.leaves(weights_cut), jax.tree.leaves(weights_full)):
    np.testing.assert_array_equal(a[:2 * E + 1], b[:2 * E + 1])
    np.testing.assert_array_equal(a[2 * E:], jnp.broadcast_to(a[2 * E], a[2 * E:].shape))
    assert not np.allclose(b[-1], b[2 * E])  # the uncut book goes on reading
  np.testing.assert_allclose(curve_cut[:2 * E + 1], curve_full[:2 * E + 1])
  np.testing.assert_allclose(curve_cut[2 * E:], curve_cut[2 * E])  # chapter 2 never scored
  state = jax.jit(lambda ep: unroll(learner, theta, learner.init_state(theta, ep), ep, C * E)[0])(
      episode)
  np.testing.assert_array_equal(learner.chapters_read(state, episode), [True, True, False])
