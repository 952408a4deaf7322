"""Networks: the two convolution implementations agree; pooling; explicit normalisation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn import models
from metalearn.models import networks


def _conv4(impl, norm="batch", pool="max", out_dim=5, size=28, num_layers=4):
  cfg = ml_collections.ConfigDict(dict(name="conv4", filters=8, num_layers=num_layers, norm=norm,
                                       pool=pool, conv_impl=impl))
  return models.make(cfg, (size, size, 1), out_dim)


def test_im2col_and_xla_convolutions_agree_in_value_and_gradient_under_vmap():
  # 16: 'SAME' stride-2 padding is asymmetric on even sizes (XLA pads the end only).
  for pool in ("max", "stride"):
    init, apply_xla = _conv4("xla", pool=pool, size=16)
    _, apply_im2col = _conv4("im2col", pool=pool, size=16)
    params = jax.jit(init)(jax.random.key(0))
    # Per-task weights (as after an inner step) and per-task images. (NumPy draws them: eager
    # jax.random would compile a sampler for every parameter shape, the bulk of this test.)
    rng = np.random.default_rng(1)
    params_B = jax.tree.map(
        lambda p: p + 0.01 * rng.standard_normal((3,) + p.shape, np.float32), params)
    x_B = jnp.asarray(rng.uniform(size=(3, 6, 16, 16, 1)).astype(np.float32))
    loss = lambda apply: lambda p, x: jnp.sum(jnp.sin(apply(p, x)))
    # Each function compiled as one program (as training runs it), not op by op.
    v_xla, v_im2col = (jax.jit(jax.vmap(loss(apply)))(params_B, x_B)
                       for apply in (apply_xla, apply_im2col))
    assert v_xla.shape == v_im2col.shape == (3,)
    np.testing.assert_allclose(v_xla, v_im2col, rtol=2e-4, atol=2e-4)
    g_xla = jax.jit(jax.vmap(jax.grad(loss(apply_xla))))(params_B, x_B)
    g_im2col = jax.jit(jax.vmap(jax.grad(loss(apply_im2col))))(params_B, x_B)
    for a, b in zip(jax.tree.leaves(g_xla), jax.tree.leaves(g_im2col)):
      np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)


def test_max_pool_matches_flax_valid_pooling_on_odd_sizes():
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
  np.testing.assert_array_equal(networks.max_pool_2x2(x), nn.max_pool(x, (2, 2), (2, 2)))


def test_batch_norm_uses_the_batch_and_layer_norm_does_not():
  x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
  other = x.at[1:].multiply(3.0)
  for norm, shares in (("batch", True), ("layer", False)):
    init, apply = (jax.jit(f) for f in _conv4("im2col", norm=norm))
    params = init(jax.random.key(1))
    changed = not np.allclose(apply(params, x)[0], apply(params, other)[0], atol=1e-5)
    assert changed == shares, norm
  init, apply = (jax.jit(f) for f in _conv4("im2col", norm="none"))
  assert not any("norm" in k for k in init(jax.random.key(0)))
  assert apply(init(jax.random.key(0)), x).shape == (4, 5)


def test_embedding_without_head():
  init, apply = (jax.jit(f) for f in _conv4("im2col", out_dim=None))
  params = init(jax.random.key(0))
  assert "head" not in params
  assert apply(params, jnp.zeros((3, 28, 28, 1))).shape == (3, 8)  # 28->14->7->3->1


def test_vmapped_gradients_match_per_task_gradients():
  # Regression: with batch norm, max-pooling and 3 images per task, the vmapped gradient of a
  # reshape-based max-pool came out wrong on XLA:CPU while the forward pass was right.
  for norm in ("batch", "none"):
    init, apply = _conv4("im2col", norm=norm, out_dim=None, size=8, num_layers=2)
    params = jax.jit(init)(jax.random.key(0))
    x_B = jax.random.uniform(jax.random.key(5), (4, 3, 8, 8, 1))
    loss = lambda p, x: jnp.sum(jnp.sin(3 * apply(p, x)))
    per_task_grad = jax.jit(jax.grad(loss))  # one compiled program for the four tasks
    per_task = [per_task_grad(params, x) for x in x_B]
    looped = jax.tree.map(lambda *g: sum(g) / len(g), *per_task)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(looped)) > 1e-2
    vmapped = jax.jit(jax.grad(lambda p, x: jnp.mean(jax.vmap(lambda x: loss(p, x))(x))))(
        params, x_B)
    for a, b in zip(jax.tree.leaves(vmapped), jax.tree.leaves(looped)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
