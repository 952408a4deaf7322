import jax
import jax.numpy as jnp
import numpy as np

from metalearn.tasks import SinusoidFamily
from tests.conftest import sample_tasks


def test_episode_shapes_and_priors():
  family = SinusoidFamily(num_support=7, num_query=3)
  eps = jax.jit(lambda k: sample_tasks(family, k, 2000))(jax.random.key(0))
  assert eps.support_x.shape == (2000, 7, 1) and eps.query_y.shape == (2000, 3, 1)
  amp, phase = np.asarray(eps.info["amplitude"]), np.asarray(eps.info["phase"])
  assert 0.1 <= amp.min() and amp.max() <= 5.0 and amp.std() > 1.0
  assert 0.0 <= phase.min() and phase.max() <= np.pi
  x = np.concatenate([eps.support_x, eps.query_x], axis=1)
  assert -5 <= x.min() and x.max() <= 5 and x.min() < -4.9 and x.max() > 4.9
  np.testing.assert_allclose(eps.support_y, family.target(
      jax.tree.map(lambda a: a[:, None, None], eps.info), eps.support_x), rtol=1e-6)


def test_sampling_is_a_pure_function_of_the_key():
  family = SinusoidFamily()
  a = sample_tasks(family, jax.random.key(3), 5)
  b = sample_tasks(family, jax.random.key(3), 5)
  c = sample_tasks(family, jax.random.key(4), 5)
  assert all(jnp.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert not jnp.array_equal(a.support_x, c.support_x)


def test_loss_is_mse():
  family = SinusoidFamily()
  assert float(family.loss(jnp.array([[1.0], [3.0]]), jnp.zeros((2, 1)))) == 5.0


def test_a_steered_support_size_masks_points_and_the_learner_sees_only_those():
  import ml_collections
  from metalearn import models
  from metalearn.learners import GradientLearner
  family = SinusoidFamily(num_support=8)
  episode = family.at_task(jnp.array([1.0, 1.0, 3 / 7])).sample(jax.random.key(0))  # 1 + 3 shots
  np.testing.assert_array_equal(episode.info["support_weight"], [1, 1, 1, 1, 0, 0, 0, 0])
  assert "support_weight" not in family.sample(jax.random.key(0)).info
  assert float(family.at_task(jnp.zeros(3)).sample(jax.random.key(0)).info[
      "support_weight"].sum()) == 1.0
  init_fn, apply_fn = models.make(
      ml_collections.ConfigDict(dict(name="mlp", hidden=(8,), norm="none")), (1,), 1)
  learner = GradientLearner(init_fn, apply_fn, family.loss, inner_lr=0.1)
  theta = jax.jit(learner.init)(jax.random.key(1))
  # one inner step as one program per episode structure (as training runs it), not op by op
  step = jax.jit(lambda ep: learner.step(theta, learner.init_state(theta, ep), ep))
  masked = step(episode)
  short = episode._replace(support_x=episode.support_x[:4], support_y=episode.support_y[:4],
                           info={k: v for k, v in episode.info.items() if k != "support_weight"})
  plain = step(short)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), masked, plain)
  full = step(episode._replace(
      info={k: v for k, v in episode.info.items() if k != "support_weight"}))
  assert not np.allclose(jax.tree.leaves(full)[0], jax.tree.leaves(plain)[0])
