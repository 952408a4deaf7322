"""Classical in-context-learning baselines: closed forms, optimality conditions and causality."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn.learners import icl_baselines as B


def _linear_prompt(seed, n, d, noise=0.0, w=None):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  w = rng.normal(size=d) if w is None else np.asarray(w)
  y = (x @ w + noise * rng.normal(size=n)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y), w


def _cluster_prompt(seed, n=24, d=2, c=3):
  rng = np.random.default_rng(seed)
  centres = np.array([[8.0, 0.0], [-4.0, 7.0], [-4.0, -7.0]])[:c, :d]
  labels = np.concatenate([np.arange(c), rng.integers(0, c, n - c)]).astype(np.int32)
  x = (centres[labels] + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(labels)


_POOL = np.random.default_rng(7).normal(size=(4, 5)).astype(np.float32)
_REGRESSORS = {
    **B.REGRESSION_BASELINES,
    "ridge": functools.partial(B.ridge, lam=0.25),
    "gd": functools.partial(B.gradient_descent, num_steps=5, lr=0.3),
    "bayes": functools.partial(B.bayes_discrete, pool_w=jnp.asarray(_POOL), noise_std=3.0),
}


@pytest.mark.parametrize("name", sorted(_REGRESSORS) + ["logistic"])
def test_predictions_use_only_earlier_examples(name):
  if name == "logistic":
    x, y = _cluster_prompt(0, n=12)
    fn = functools.partial(B.logistic_regression, num_classes=3, num_iters=50)
    y2 = y.at[6:].set((y[6:] + 1) % 3)
  else:
    x, y, _ = _linear_prompt(0, 12, 5, noise=0.1)
    fn = _REGRESSORS[name]
    y2 = y.at[6:].add(3.0)
  # Targets change from position 6 on, inputs from 7 on (so query x[6] is the same).
  x2 = x.at[7:].set(jnp.asarray(np.random.default_rng(1).normal(size=(5, x.shape[1])) * 5,
                                jnp.float32))
  p, p2 = np.asarray(jax.jit(jax.vmap(fn))(jnp.stack([x, x2]), jnp.stack([y, y2])))  # batched
  assert p.shape[0] == 12 and np.all(np.isfinite(p))
  np.testing.assert_allclose(p[:7], p2[:7], rtol=1e-5, atol=1e-5)  # k <= 6 reads only 0..5
  assert not np.allclose(p[7:], p2[7:])  # later predictions did see the changes
  if name in B.REGRESSION_BASELINES or name in ("ridge", "gd"):
    assert p[0] == 0.0
  if name == "logistic":
    np.testing.assert_array_equal(p[0], np.zeros(3))


def test_least_squares_exact_once_determined():
  d, n = 8, 17
  x, y, _ = _linear_prompt(1, n, d)
  p = np.asarray(jax.jit(B.least_squares)(x, y))
  assert p[0] == 0.0
  np.testing.assert_allclose(p[d:], y[d:], rtol=1e-3, atol=1e-3 * np.abs(y).max())
  assert np.abs(p[d // 2] - y[d // 2]) > 1e-2  # underdetermined: not exact
  # k < D: the minimum-norm interpolant.
  k = 3
  w_mn = np.linalg.pinv(np.asarray(x[:k], np.float64)) @ np.asarray(y[:k], np.float64)
  np.testing.assert_allclose(p[k], w_mn @ np.asarray(x[k]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lam", [0.25, 1.0])
def test_ridge_matches_closed_form(lam):
  d, n = 5, 12
  x, y, _ = _linear_prompt(2, n, d, noise=0.3)
  p = np.asarray(jax.jit(B.ridge)(x, y, lam))
  xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
  want = [np.linalg.solve(xs[:k].T @ xs[:k] + lam * np.eye(d), xs[:k].T @ ys[:k]) @ xs[k]
          for k in range(n)]
  np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-5)


def test_bayes_discrete_matches_hand_posterior_and_finds_task():
  pool = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
  x = jnp.asarray([[1.0, 2.0], [0.5, -1.0], [2.0, 1.0], [1.0, 1.0]], jnp.float32)
  y = jnp.asarray([0.8, 0.6, 2.1, 0.0], jnp.float32)
  s = 0.7
  bayes = jax.jit(B.bayes_discrete)
  p = np.asarray(bayes(x, y, jnp.asarray(pool), s))
  xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
  for k in range(4):
    ll = np.array([-np.sum((ys[:k] - xs[:k] @ w) ** 2) / (2 * s * s) for w in pool])
    post = np.exp(ll - ll.max()) / np.exp(ll - ll.max()).sum()
    np.testing.assert_allclose(p[k], post @ (pool @ xs[k]), rtol=1e-5, atol=1e-6)
  # Nearly noiseless prompts from the third task of a 4-task pool: identified after 3 examples.
  x, y, _ = _linear_prompt(3, 10, 5, noise=0.01, w=_POOL[2])
  p = np.asarray(bayes(x, y, jnp.asarray(_POOL), 0.05))
  np.testing.assert_allclose(p[3:], np.asarray(x[3:]) @ _POOL[2], atol=0.05)
  # Hugely noisy log-likelihoods stay finite (log-space softmax).
  assert np.all(np.isfinite(bayes(x, 100 * y, jnp.asarray(_POOL), 1e-3)))


def test_knn_hand_example():
  x = jnp.asarray([[0.0], [1.0], [10.0], [2.0], [1.4]])
  y = jnp.asarray([1.0, 2.0, 3.0, 4.0, 5.0])
  knn = jax.jit(B.knn, static_argnums=2)
  np.testing.assert_allclose(knn(x, y, 2), [0.0, 1.0, 1.5, 1.5, 3.0], atol=1e-6)
  np.testing.assert_allclose(knn(x, y, 1), [0.0, 1.0, 2.0, 2.0, 2.0], atol=1e-6)
  np.testing.assert_allclose(knn(x, y, 9), [0.0, 1.0, 1.5, 2.0, 2.5], atol=1e-6)


def test_averaging_closed_form():
  x, y, _ = _linear_prompt(4, 9, 3)
  xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
  want = [0.0] + [(ys[:k] @ xs[:k] / k) @ xs[k] for k in range(1, 9)]
  np.testing.assert_allclose(jax.jit(B.averaging)(x, y), want, rtol=1e-5, atol=1e-5)


def test_lasso_kkt_and_sparse_recovery():
  d, n = 20, 41
  w = np.zeros(d)
  w[[2, 9, 15]] = [1.5, -2.0, 1.0]
  xb, yb = zip(*[_linear_prompt(10 + b, n, d, w=w)[:2] for b in range(8)])
  xb, yb = jnp.stack(xb), jnp.stack(yb)
  weights = jax.jit(jax.vmap(B.lasso_weights, (0, 0, None)))
  ws = {a: np.asarray(weights(xb, yb, a), np.float64) for a in (0.1, 0.01)}
  np.testing.assert_allclose(jax.jit(jax.vmap(B.REGRESSION_BASELINES["lasso"]))(xb, yb),
                             np.einsum("bnd,bnd->bn", ws[0.1], xb), rtol=1e-4, atol=1e-4)
  xb, yb = np.asarray(xb, np.float64), np.asarray(yb, np.float64)
  # Optimality: X^T (y - X w) / k = alpha sign(w) on the support, |.| <= alpha off it.
  for alpha, wa in ws.items():
    for b in range(2):
      for k in range(1, n):
        xs, ys, wk = xb[b, :k], yb[b, :k], wa[b, k]
        g = xs.T @ (ys - xs @ wk) / k
        nz = np.abs(wk) > 1e-6
        np.testing.assert_allclose(g[nz], alpha * np.sign(wk[nz]), atol=1e-3)
        assert np.all(np.abs(g[~nz]) <= alpha + 1e-3)
  # With k = 16 < D = 20 noiseless samples, lasso recovers w; min-norm least squares cannot.
  k = 16
  ls_w = np.stack([np.linalg.pinv(xb[b, :k]) @ yb[b, :k] for b in range(8)])
  lasso_err, ls_err = np.mean((ws[0.01][:, k] - w) ** 2), np.mean((ls_w - w) ** 2)
  assert lasso_err < 0.02 * ls_err, (lasso_err, ls_err)
  assert np.mean((ws[0.1][:, k] - w) ** 2) < 0.5 * ls_err  # the default penalty helps too


def test_gradient_descent_one_step_and_convergence():
  d, n, lr = 4, 20, 0.3
  x, y, _ = _linear_prompt(5, n, d, noise=0.2)
  xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
  want = [0.0] + [(lr / k) * (ys[:k] @ xs[:k]) @ xs[k] for k in range(1, n)]
  gd = jax.jit(B.gradient_descent, static_argnums=2)
  np.testing.assert_allclose(gd(x, y, 1, lr), want, rtol=1e-4, atol=1e-5)
  ls = np.asarray(jax.jit(B.least_squares)(x, y))
  np.testing.assert_allclose(gd(x, y, 3000, 0.1)[2 * d:], ls[2 * d:], atol=2e-3)
  assert np.max(np.abs(gd(x, y, 1, 0.1)[2 * d:] - ls[2 * d:])) > 0.05  # one step is not LS


def test_best_gd_lr_is_grid_argmin():
  rng = np.random.default_rng(6)
  xb = jnp.asarray(rng.normal(size=(16, 11, 4)), jnp.float32)
  yb = jnp.einsum("bnd,bd->bn", xb, jnp.asarray(rng.normal(size=(16, 4)), jnp.float32))
  lrs = jnp.asarray([0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 30.0], jnp.float32)  # 30 overshoots badly
  best = float(jax.jit(B.best_gd_lr, static_argnums=2)(xb, yb, 2, lrs))
  gd = jax.jit(jax.vmap(B.gradient_descent, (0, 0, None, None)), static_argnums=2)
  errs = [np.mean((np.asarray(gd(xb, yb, 2, lr))[:, -1] - np.asarray(yb)[:, -1]) ** 2)
          for lr in np.asarray(lrs)]
  errs = np.where(np.isfinite(errs), errs, np.inf)
  assert best == float(lrs[int(np.argmin(errs))])
  assert best not in (0.01, 30.0)  # an interior optimum: the search is not trivially at an end


def test_logistic_regression_separates_clusters():
  x, labels = _cluster_prompt(8, n=24)
  logits = np.asarray(jax.jit(functools.partial(B.logistic_regression, num_classes=3))(x, labels))
  assert logits.shape == (24, 3)
  np.testing.assert_array_equal(logits[0], 0.0)
  np.testing.assert_array_equal(logits[3:].argmax(-1), np.asarray(labels)[3:])
  # Batched over prompts and invariant to the input scale (the default 1/L step).
  xb, lb = zip(*[_cluster_prompt(s, n=24) for s in range(4)])
  xb, lb = 100 * jnp.stack(xb), jnp.stack(lb)
  out = jax.jit(jax.vmap(functools.partial(B.logistic_regression, num_classes=3)))(xb, lb)
  assert np.mean(np.asarray(out)[:, 3:].argmax(-1) == np.asarray(lb)[:, 3:]) == 1.0
