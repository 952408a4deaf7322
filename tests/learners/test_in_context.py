"""In-context learners: causal masking, token layouts, the LSA gradient-descent construction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.learners import InContextLearner
from metalearn.learners import icl_baselines as bl
from metalearn.models import sequence as sm
from metalearn.learners.in_context import encode_labels, tokens
from metalearn.tasks import ProjectedClassification, RegressionPrompts
from metalearn.unroll import unroll

N, D = 7, 3
REGRESSION = RegressionPrompts.create("linear", D, N)
CLASSIFICATION = ProjectedClassification.create(4, N, num_classes=3, dim=D, pool_size=50)
LEARNERS = {
    "transformer_interleaved": (sm.Transformer(16, 2, 2, 1, 2 * N), "interleaved", REGRESSION),
    "transformer_packed": (sm.Transformer(16, 2, 2, 1, N), "packed", REGRESSION),
    "lstm_packed": (sm.LSTM(16, 2, 1), "packed", REGRESSION),
    "lsa_prefix": (sm.LinearSelfAttention(2, init_scale=0.3), "prefix", REGRESSION),
    "transformer_classification": (sm.Transformer(16, 1, 2, 3, N), "packed", CLASSIFICATION),
}


@pytest.mark.parametrize("name", list(LEARNERS))
def test_a_prediction_never_depends_on_later_examples(name):
  model, layout, family = LEARNERS[name]
  learner = InContextLearner(model, family, layout)
  theta = jax.jit(learner.init)(jax.random.key(0))
  episode = jax.jit(family.sample)(jax.random.key(1))
  predict = jax.jit(learner.predict_prompt)
  base = np.asarray(predict(theta, episode.support_x, episode.support_y))
  for j in (2, 4):
    x = episode.support_x.at[j].add(1.5)
    y = (episode.support_y.at[j].add(2.0) if not family.is_classification
         else episode.support_y.at[j].set((episode.support_y[j] + 1) % 3))
    for xj, yj, first_changed in ((x, episode.support_y, j), (episode.support_x, y, j + 1)):
      out = np.asarray(predict(theta, xj, yj))
      np.testing.assert_allclose(out[:first_changed], base[:first_changed], rtol=1e-5,
                                 atol=1e-6)  # positions before the change see none of it
      assert not np.allclose(out[first_changed], base[first_changed], atol=1e-6), (
          "the perturbed example must reach the next prediction")


def test_packed_and_interleaved_layouts_read_the_same_targets():
  x = jnp.arange(N * D, dtype=jnp.float32).reshape(N, D) + 1
  y = 100.0 + jnp.arange(N, dtype=jnp.float32)
  u = encode_labels(y, None)
  for layout in ("interleaved", "packed"):
    toks, read = tokens(layout, x, u)
    for k in range(N):
      seen = np.asarray(toks[:read[k] + 1])
      labels_seen = sorted(set(seen[:, D:].ravel().tolist()) - {0.0})
      assert labels_seen == [100.0 + i for i in range(k)], (layout, k)  # y_0 .. y_{k-1}
      np.testing.assert_array_equal(toks[read[k], :D], x[k])  # read at x_k's token
  assert tokens("packed", x, u)[0].shape[0] * 2 == tokens("interleaved", x, u)[0].shape[0]
  with pytest.raises(ValueError, match="layout"):
    tokens("prefix", x, u)


def test_one_lsa_layer_with_the_gd_weights_is_one_gradient_descent_step():
  family = RegressionPrompts.create("linear", 4, 9, x_dist="uniform")
  learner = InContextLearner(sm.LinearSelfAttention(1), family, "prefix")
  lr, E = 0.7, 5
  w_kq = jnp.zeros((E, E)).at[:4, :4].set(jnp.eye(4))
  w_pv = jnp.zeros((E, E)).at[4, 4].set(lr)
  theta = {"params": {"w_kq_0": w_kq, "w_pv_0": w_pv}}
  episode = jax.jit(family.sample)(jax.random.key(2))
  pred = jax.jit(learner.predict_prompt)(theta, episode.support_x, episode.support_y)
  gd = jax.jit(bl.gradient_descent, static_argnums=(2, 3))(episode.support_x, episode.support_y,
                                                           1, lr)
  np.testing.assert_allclose(pred, gd, rtol=1e-4, atol=1e-6)


def test_unroll_gives_the_curve_of_one_pass_and_checks_its_length():
  model, layout, family = LEARNERS["transformer_packed"]
  learner = InContextLearner(model, family, layout)
  theta = jax.jit(learner.init)(jax.random.key(0))
  episode = jax.jit(family.sample)(jax.random.key(1))
  _, curve = jax.jit(lambda t, e: unroll(learner, t, learner.init_state(t, e), e, N - 1))(
      theta, episode)
  pred = jax.jit(learner.predict_prompt)(theta, episode.support_x, episode.support_y)
  np.testing.assert_allclose(curve, jnp.square(pred - episode.support_y) / family.normaliser,
                             rtol=1e-5)
  with pytest.raises(ValueError, match="num_steps must be 6"):
    unroll(learner, theta, (), episode, 3)
  # positions past a curriculum's active length carry no loss
  short = episode._replace(info={**episode.info, "points": jnp.int32(4)})
  np.testing.assert_array_equal(jax.jit(learner.curve)(theta, short)[4:], 0.0)
