"""Prototypical Networks: prototypes, distances, and a trivially separable episode."""

import jax
import jax.numpy as jnp
import numpy as np

from metalearn import config as config_lib
from metalearn import experiment
from metalearn.learners import ProtoNetLearner
from metalearn.tasks import Episode


def _flatten_learner(num_ways):
  loss = lambda logits, y: -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])
  return ProtoNetLearner(lambda key: {}, lambda p, x: x.reshape(x.shape[0], -1), loss, num_ways)


def test_separable_episode_is_classified_perfectly():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(4, 6)) * 10
  make = lambda n: (centres[:, None] + rng.normal(size=(4, n, 6))).reshape(-1, 6)
  labels = lambda n: np.repeat(np.arange(4), n)
  # Query labels shuffled so that order cannot give the answer away.
  perm = rng.permutation(4 * 7)
  episode = Episode(jnp.asarray(make(3)), jnp.asarray(labels(3)),
                    jnp.asarray(make(7)[perm]), jnp.asarray(labels(7)[perm]), {})
  learner = _flatten_learner(4)
  theta = learner.init(jax.random.key(0))
  state = learner.init_state(theta, episode)
  support = np.asarray(episode.support_x).reshape(4, 3, 6)
  np.testing.assert_allclose(state, support.mean(1), rtol=1e-5)
  logits = learner.predict(theta, state, episode.query_x)
  expected = -((np.asarray(episode.query_x)[:, None] - support.mean(1)[None]) ** 2).sum(-1)
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-3)
  assert np.all(np.asarray(logits).argmax(-1) == np.asarray(episode.query_y))
  assert float(learner.query_loss(theta, state, episode)) < 1e-3
  assert learner.step(theta, state, episode) is state


def test_protonet_on_conv4_trains_through_the_embedding():
  c = config_lib.default_config(task="few_shot", model="conv4")
  c.learner.name = "protonet"
  family_shape = (28, 28, 1)

  class Family:  # shapes only: the learner needs input_shape, loss and num_ways
    input_shape, num_ways = family_shape, 3
    loss = staticmethod(lambda logits, y: -jnp.mean(
        jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y]))

  c.model.filters = 4
  learner = experiment.make_learner(c, Family())
  theta = jax.jit(learner.init)(jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (6, 28, 28, 1))
  episode = Episode(x[:3], jnp.arange(3), x[3:], jnp.arange(3), {})
  # one compiled program (as training runs it), not op by op
  grads = jax.jit(jax.grad(
      lambda t: learner.query_loss(t, learner.init_state(t, episode), episode)))(theta)
  assert "head" not in theta["params"]  # an embedding, no classifier layer
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))
