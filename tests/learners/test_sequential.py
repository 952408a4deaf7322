"""The sequential (textbook) learner: state carried across chapters by value, one exercise per
step, the whole-book curve, OML's frozen representation, and every estimator through unroll."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import estimators, models, objectives
from metalearn.learners import SequentialLearner
from metalearn.tasks import TextbookRegression
from metalearn.unroll import unroll

C, E = 3, 4
BOOK = TextbookRegression(num_chapters=C, exercises_per_chapter=E, batch_size=5, num_query=6)


class _Model:
  hidden, norm, name = (8,), "none", "mlp"


@functools.lru_cache  # one learner per setting: jitted functions taking it compile once
def _learner(mode="full", learn_inner_lr=False, inner_lr=0.05):
  init_fn, apply_fn = models.make(_Model, BOOK.input_shape, BOOK.output_dim)
  return SequentialLearner(init_fn, apply_fn, BOOK.loss, inner_lr, mode, learn_inner_lr)


_sample = jax.jit(BOOK.sample)


def _setup(mode="full", dtype=jnp.float32, **kwargs):
  learner = _learner(mode, **kwargs)
  theta = jax.tree.map(lambda p: p.astype(dtype), jax.jit(learner.init)(jax.random.key(0)))
  episode = jax.tree.map(lambda a: a.astype(dtype) if a.dtype == jnp.float32 else a,
                         _sample(jax.random.key(1)))
  return learner, theta, episode


def _weights(th, s, ep):
  del th, ep
  return s.weights


# Compiled once per learner: the whole book recording the weights after every step, and one
# chapter (E steps) from a given state.
_book = jax.jit(lambda l, th, ep: unroll(l, th, l.init_state(th, ep), ep, C * E,
                                         measure=_weights), static_argnums=0)
_chapter = jax.jit(lambda l, th, s, ep: unroll(l, th, s, ep, E, measure=_weights)[0],
                   static_argnums=0)


def _leaves_equal(a, b, exact=True):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    if exact:
      np.testing.assert_array_equal(x, y)
    else:
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["full", "oml"])
def test_chapter_c_starts_from_the_weights_chapter_c_minus_1_ended_with(mode):
  learner, theta, episode = _setup(mode)
  _, states = _book(learner, theta, episode)  # states[t]: weights after t exercises
  at = lambda t: jax.tree.map(lambda a: a[t], states)
  # A separate run of chapters 0..c-1 only (c = 2): everything after them is poisoned, so the
  # run cannot depend on it; chapter by chapter, carrying the state as truncated estimators do.
  c = 2
  cut = episode._replace(support_x=episode.support_x.at[c * E:].set(jnp.nan),
                         support_y=episode.support_y.at[c * E:].set(jnp.nan),
                         query_x=episode.query_x.at[c:].set(jnp.nan))
  state = learner.init_state(theta, cut)
  for chapter in range(c):
    state = _chapter(learner, theta, state, cut)
    assert int(state.step) == (chapter + 1) * E
    _leaves_equal(state.weights, at((chapter + 1) * E), exact=False)
  # chapter c starts from exactly these weights: its first step is one SGD step from them on
  # exercise c * E
  @jax.jit
  def sgd(weights, x, y):
    grads = jax.grad(lambda w: BOOK.loss(learner.predict(theta, state._replace(weights=w), x),
                                         y))(weights)
    return jax.tree.map(lambda w, g: w - learner.inner_lr * g, weights, grads)

  expected = sgd(state.weights, episode.support_x[c * E], episode.support_y[c * E])
  _leaves_equal(expected, at(c * E + 1), exact=False)


def test_step_t_reads_exercise_t_only():
  learner, theta, episode = _setup()
  _, states = _book(learner, theta, episode)
  t = 5  # the state after t + 1 steps depends on exercises 0..t only
  later = episode._replace(support_x=episode.support_x.at[t + 1:].add(3.0),
                           support_y=episode.support_y.at[t + 1:].add(-2.0),
                           query_x=episode.query_x + 1.0)  # queries do not train either
  _, changed = _book(learner, theta, later)
  for a, b in zip(jax.tree.leaves(states), jax.tree.leaves(changed)):
    np.testing.assert_array_equal(a[:t + 2], b[:t + 2])
    assert not np.allclose(a[t + 2:], b[t + 2:])
  this = episode._replace(support_y=episode.support_y.at[t].add(1.0))
  _, moved = _book(learner, theta, this)
  for a, b in zip(jax.tree.leaves(states), jax.tree.leaves(moved)):
    np.testing.assert_array_equal(a[:t + 1], b[:t + 1])
    assert not np.allclose(a[t + 1], b[t + 1])


def test_query_loss_is_the_mean_over_the_chapters_read_so_far():
  learner, theta, episode = _setup()
  measures = lambda th, s, ep: (learner.query_loss(th, s, ep), learner.chapter_losses(th, s, ep))
  _, (curve, per_chapter) = jax.jit(lambda th, ep: unroll(
      learner, th, learner.init_state(th, ep), ep, C * E, measure=measures))(theta, episode)
  assert curve.shape == (C * E + 1,) and per_chapter.shape == (C * E + 1, C)
  for t in range(C * E + 1):
    read = 1 if t <= E else 2 if t <= 2 * E else 3  # after t exercises (t = 0: chapter 0)
    np.testing.assert_allclose(curve[t], per_chapter[t, :read].mean(), rtol=1e-6)


def test_oml_freezes_the_representation_and_meta_gradients_reach_it():
  learner, theta, episode = _setup("oml")
  assert set(learner.init_state(theta, episode).weights) == {"kernel", "bias"}  # the head only
  # truncated backprop over chapters: the second segment starts from a carried
  # (stop-gradient) head and still sends meta-gradient to the representation, which is read
  # from theta, never carried
  est = estimators.truncated_backprop(learner, BOOK, objectives.get_objective("mean"), 2,
                                      C * E, E)
  state = est.init(jax.random.key(3), theta)
  estimate = jax.jit(est.estimate)
  for i in range(2):
    grads, state, _ = estimate(theta, state, jax.random.key(4 + i))
    body = grads["params"]["hidden_0"]["kernel"]
    assert np.all(np.isfinite(body)) and np.abs(body).max() > 0
  assert np.all(np.asarray(state.step) == 2 * E)
  for b in range(2):  # after 2 chapters of sequential SGD: the RLN is theta's, the head moved
    inner = jax.tree.map(lambda a: a[b], state.inner_state)
    params = learner.params(theta, inner)
    for name in theta["params"]:
      if name != "head":
        _leaves_equal(params[name], theta["params"][name])
    assert not np.allclose(params["head"]["kernel"], theta["params"]["head"]["kernel"])


def test_meta_gradient_through_the_book_matches_finite_differences():
  with jax.enable_x64(True):  # the book is sampled in float64 too
    learner, theta, episode = _setup("full", jnp.float64, learn_inner_lr=True)
    objective = objectives.get_objective("mean")

    def meta_loss(th):  # what full_backprop differentiates, on one book
      return objective(unroll(learner, th, learner.init_state(th, episode), episode, C * E)[1])

    value_and_grad = jax.jit(jax.value_and_grad(meta_loss))  # one compile: FD reuses it
    grads = value_and_grad(theta)[1]
    assert np.abs(grads["inner_lr"]["head"]["kernel"]).max() > 0  # Meta-SGD step sizes learn
    leaves, treedef = jax.tree.flatten(theta)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, l.shape, l.dtype)
                                             for k, l in zip(keys, leaves)])
    eps = 1e-6
    shift = lambda s: jax.tree.map(lambda t, d: t + s * eps * d, theta, direction)
    fd = (value_and_grad(shift(1))[0] - value_and_grad(shift(-1))[0]) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                  jax.tree.leaves(direction)))
    np.testing.assert_allclose(analytic, fd, rtol=1e-6)


def test_pes_runs_unchanged_through_unroll_across_books():
  learner, theta, _ = _setup("oml")
  objective = objectives.get_objective("progress")
  est = estimators.truncated_es(learner, BOOK, objective, 2, C * E, E, 0.01, True, False)
  state = est.init(jax.random.key(0), theta)
  estimate = jax.jit(est.estimate)
  for i in range(C + 1):  # past the end of a book: tasks are replaced and reading restarts
    grads, state, metrics = estimate(theta, state, jax.random.key(i))
    assert np.isfinite(metrics["meta_loss"])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert np.abs(grads["params"]["hidden_0"]["kernel"]).max() > 0
