import jax
import jax.numpy as jnp
import numpy as np

from metalearn.tasks import SinusoidFamily, sample_batch


def test_episode_shapes_and_priors():
  family = SinusoidFamily(num_support=7, num_query=3)
  eps = jax.jit(lambda k: sample_batch(family, k, 2000))(jax.random.key(0))
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
  a = sample_batch(family, jax.random.key(3), 5)
  b = sample_batch(family, jax.random.key(3), 5)
  c = sample_batch(family, jax.random.key(4), 5)
  assert all(jnp.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert not jnp.array_equal(a.support_x, c.support_x)


def test_loss_is_mse():
  family = SinusoidFamily()
  assert float(family.loss(jnp.array([[1.0], [3.0]]), jnp.zeros((2, 1)))) == 5.0
