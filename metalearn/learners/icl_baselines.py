"""Classical learners read along an in-context-learning prompt: the baselines a meta-trained
sequence model is compared with (Garg et al. 2022; Raventos et al. 2023; von Oswald et al. 2023;
Kirsch et al. 2022).

Contract. A prompt is ``x`` ``[N, D]`` (float32) and ``y`` ``[N]`` (float32 targets for
regression, int32 labels for classification). Every baseline returns its *learning curve*: a
prediction for every position ``k = 0..N-1`` from examples ``0..k-1`` only, i.e. fit on the
prefix ``(X_k, y_k) = (x[:k], y[:k])`` and evaluated at the query ``x_k = x[k]``. Regression
gives ``[N]`` predictions with ``pred[0] = 0`` (no examples; :func:`bayes_discrete` gives its
prior mean instead); classification gives ``[N, C]`` logits with ``logits[0] = 0`` (uniform).

All prefixes are computed at once with static shapes: ``jax.vmap`` over ``k`` of a fit on the
prompt with rows ``i >= k`` replaced by zeros (``mask = arange(N) < k``), so later examples can
never leak into earlier predictions. Every function is pure, jittable and vmappable over a batch
of prompts; iteration counts are static Python ints, step sizes and penalties may be traced.
"""

import functools

import jax
import jax.numpy as jnp


def _per_prefix(fn, x, y):
  """``[fn(xm_k, ym_k, m_k, k, x[k]) for k < N]``: rows ``>= k`` zeroed, ``m_k`` the 0/1 mask."""
  n = x.shape[0]

  def one(k):
    m = jnp.arange(n) < k
    xm = jnp.where(m[:, None], x, 0).astype(x.dtype)
    ym = None if y is None else jnp.where(m, y, 0).astype(x.dtype)
    return fn(xm, ym, m.astype(x.dtype), k, x[k])

  return jax.vmap(one)(jnp.arange(n))


def _moments(xm, ym, k):
  """``(X_k^T X_k / k, X_k^T y_k / k)``; zeros at ``k = 0``."""
  kk = jnp.maximum(k, 1).astype(xm.dtype)
  return xm.T @ xm / kk, xm.T @ ym / kk


def _lmax(a):
  """Largest eigenvalue of the symmetric PSD ``a``, floored at ``1e-12`` (``a = 0`` at k = 0)."""
  return jnp.maximum(jnp.linalg.eigvalsh(a)[-1], 1e-12)


def least_squares(x, y):
  """Minimum-norm least squares on each prefix.

  ``w_k = X_k^+ y_k`` (pseudo-inverse by ``jnp.linalg.lstsq``: SVD, singular values below
  ``eps * max(N, D) * s_max`` dropped), ``pred_k = w_k . x_k``. For ``k >= D`` (full column
  rank) this is ordinary least squares; for ``k < D`` the minimum-norm interpolant.

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.

  Returns:
    ``[N]`` predictions (0 at ``k = 0``).
  """
  return _per_prefix(lambda xm, ym, m, k, q: jnp.linalg.lstsq(xm, ym)[0] @ q, x, y)


def ridge(x, y, lam):
  """Ridge regression on each prefix.

  ``w_k = (X_k^T X_k + lam I)^{-1} X_k^T y_k``, ``pred_k = w_k . x_k``. With ``w ~ N(0, I)``,
  ``y = w . x + sigma eps`` and ``lam = sigma^2`` this is the posterior mean, i.e. the
  Bayes-optimal predictor for Gaussian linear regression.

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.
    lam: penalty ``> 0`` (may be traced); use :func:`least_squares` for ``lam = 0``.

  Returns:
    ``[N]`` predictions (0 at ``k = 0``).
  """
  eye = jnp.eye(x.shape[1], dtype=x.dtype)
  fit = lambda xm, ym, m, k, q: jnp.linalg.solve(xm.T @ xm + lam * eye, xm.T @ ym) @ q
  return _per_prefix(fit, x, y)


def knn(x, y, num_neighbors=3):
  """Nearest-neighbour regression on each prefix.

  ``pred_k = mean_{i in NN_k} y_i`` over the ``min(k, num_neighbors)`` previous examples
  closest to ``x_k`` in Euclidean distance (ties broken by position); 0 at ``k = 0``.

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.
    num_neighbors: static number of neighbours.

  Returns:
    ``[N]`` predictions.
  """
  nn = min(num_neighbors, x.shape[0])

  def fit(xm, ym, m, k, q):
    neg, idx = jax.lax.top_k(jnp.where(m > 0, -jnp.sum((xm - q) ** 2, -1), -jnp.inf), nn)
    valid = jnp.isfinite(neg)
    return jnp.sum(jnp.where(valid, ym[idx], 0)) / jnp.maximum(valid.sum(), 1)

  return _per_prefix(fit, x, y)


def averaging(x, y):
  """Garg et al.'s averaging estimator: ``w_k = (1/k) sum_{i<k} y_i x_i``, ``pred_k = w_k . x_k``.

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.

  Returns:
    ``[N]`` predictions (0 at ``k = 0``).
  """
  return _per_prefix(lambda xm, ym, m, k, q: _moments(xm, ym, k)[1] @ q, x, y)


def lasso_weights(x, y, alpha, num_iters=1000):
  """The lasso solutions ``w_k`` of every prefix, ``[N, D]`` (see :func:`lasso`)."""

  def fit(xm, ym, m, k, q):
    a, b = _moments(xm, ym, k)
    step = 1.0 / _lmax(a)

    def body(_, s):
      w, z, t = s
      v = z - step * (a @ z - b)
      w_new = jnp.sign(v) * jnp.maximum(jnp.abs(v) - alpha * step, 0)
      t_new = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
      restart = jnp.dot(z - w_new, w_new - w) > 0  # gradient restart (O'Donoghue & Candes)
      t_new = jnp.where(restart, 1.0, t_new)
      z = jnp.where(restart, w_new, w_new + (t - 1) / t_new * (w_new - w))
      return w_new, z, t_new

    w0 = jnp.zeros_like(q)
    return jax.lax.fori_loop(0, num_iters, body, (w0, w0, jnp.ones((), x.dtype)))[0]

  return _per_prefix(fit, x, y)


def lasso(x, y, alpha, num_iters=1000):
  """Lasso regression on each prefix, by FISTA with adaptive restarts.

  ``w_k = argmin_w (1/(2k)) ||X_k w - y_k||^2 + alpha ||w||_1`` (scikit-learn's scaling),
  ``pred_k = w_k . x_k``. From ``w = z = 0``: ``w <- S_{alpha/L}(z - (X_k^T X_k z - X_k^T y_k)
  / (k L))`` plus Nesterov momentum on ``z``, with ``L = lambda_max(X_k^T X_k / k)`` per prefix
  and ``S_t(v) = sign(v) max(|v| - t, 0)``. The default 1000 iterations meet the KKT conditions
  to ~1e-5 on Gaussian prompts with ``D <= 20``, ``N <= 41``.

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.
    alpha: l1 penalty (may be traced).
    num_iters: static number of FISTA iterations.

  Returns:
    ``[N]`` predictions (0 at ``k = 0``).
  """
  return jnp.einsum("nd,nd->n", lasso_weights(x, y, alpha, num_iters), x)


def _gd_weights(xm, ym, k, num_steps, lr):
  a, b = _moments(xm, ym, k)
  return jax.lax.fori_loop(0, num_steps, lambda _, w: w - lr * (a @ w - b),
                           jnp.zeros(xm.shape[1], xm.dtype))


def gradient_descent(x, y, num_steps, lr):
  """``num_steps`` steps of full-batch gradient descent from ``w = 0`` on each prefix.

  Minimises ``L_k(w) = (1/(2k)) sum_{i<k} (w . x_i - y_i)^2`` by
  ``w <- w - lr (X_k^T X_k w - X_k^T y_k) / k``; ``pred_k = w_k . x_k``. One step gives
  ``w = (lr/k) sum_{i<k} y_i x_i`` (von Oswald et al.'s linear self-attention layer).

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.
    num_steps: static number of steps.
    lr: step size (may be traced); see :func:`best_gd_lr`.

  Returns:
    ``[N]`` predictions (0 at ``k = 0``).
  """
  return _per_prefix(lambda xm, ym, m, k, q: _gd_weights(xm, ym, k, num_steps, lr) @ q, x, y)


def best_gd_lr(x_BND, y_BN, num_steps, lrs):
  """The step size in ``lrs`` with the lowest error of :func:`gradient_descent` at the end.

  ``argmin_{lr in lrs} mean_b (pred_{N-1}^b(lr) - y_{N-1}^b)^2``: the squared error at the last
  position (after reading ``N - 1`` examples), averaged over the batch. Non-finite errors (a
  diverging step size) count as ``+inf``; ties go to the first grid value; if every step size
  diverges the result is NaN.

  Args:
    x_BND: ``[B, N, D]`` inputs.
    y_BN: ``[B, N]`` targets.
    num_steps: static number of gradient steps.
    lrs: ``[L]`` candidate step sizes.

  Returns:
    A scalar: the best step size.
  """
  k = x_BND.shape[1] - 1
  m = jnp.arange(k + 1) < k

  def err(lr):
    pred = lambda x, y: _gd_weights(jnp.where(m[:, None], x, 0), jnp.where(m, y, 0), k,
                                    num_steps, lr) @ x[k]
    e = jnp.mean((jax.vmap(pred)(x_BND, y_BN) - y_BN[:, k]) ** 2)
    return jnp.where(jnp.isfinite(e), e, jnp.inf)

  errors = jax.vmap(err)(lrs)
  best = jnp.argmin(errors)
  return jnp.where(jnp.isfinite(errors[best]), lrs[best], jnp.nan)  # all diverge: NaN


def bayes_discrete(x, y, pool_w, noise_std):
  """Posterior-mean predictor for a task drawn uniformly from a finite pool (Raventos' dMMSE).

  With ``w ~ Uniform{w_1..w_M}`` and ``y = w . x + noise_std eps``, the posterior after ``k``
  examples is ``p_m(k) = softmax_m(-S_m / (2 noise_std^2))``, ``S_m = sum_{i<k} (y_i - w_m .
  x_i)^2``, and ``pred_k = sum_m p_m(k) w_m . x_k``. At ``k = 0`` this is the prior mean
  ``mean_m w_m . x_0`` (not 0).

  Args:
    x, y: the prompt, ``[N, D]`` and ``[N]``.
    pool_w: ``[M, D]`` task pool.
    noise_std: observation noise standard deviation ``> 0`` (may be traced).

  Returns:
    ``[N]`` predictions.
  """

  def fit(xm, ym, m, k, q):
    sq = jnp.sum(m[:, None] * (ym[:, None] - xm @ pool_w.T) ** 2, 0)  # [M]
    # Log space, shifted by the min *before* scaling: the best exponent is exactly 0, the rest
    # <= 0 (jax.nn.softmax of logits ~ -1e10 can give inf / inf under jit, by rounding).
    e = jnp.exp(-(sq - sq.min()) / (2 * noise_std ** 2))
    return (e / e.sum()) @ (pool_w @ q)

  return _per_prefix(fit, x, y)


def logistic_regression(x, labels, num_classes, l2=1e-3, num_iters=200, lr=None):
  """Multinomial logistic regression (softmax with bias) fit on each prefix.

  Minimises ``(1/k) sum_{i<k} CE(W^T x_i + b, y_i) + (l2/2) ||W||^2`` (bias unpenalised) by
  ``num_iters`` full-batch gradient steps from ``W = 0, b = 0``. The default step is ``1/L`` per
  prefix, ``L = lambda_max(Z_k^T Z_k / k) / 2 + l2`` with ``Z = [X, 1]``, a bound on the loss'
  curvature: it never diverges and is invariant to the input scale. Logits ``W_k^T x_k + b_k``.

  Args:
    x: ``[N, D]`` inputs.
    labels: ``[N]`` int labels in ``[0, num_classes)``.
    num_classes: static number of classes ``C``.
    l2: weight penalty (may be traced).
    num_iters: static number of gradient steps.
    lr: fixed step size, or ``None`` for the ``1/L`` rule.

  Returns:
    ``[N, C]`` logits (zeros at ``k = 0``).
  """
  z = jnp.concatenate([x, jnp.ones_like(x[:, :1])], 1)
  onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  reg = jnp.ones((z.shape[1], 1), x.dtype).at[-1].set(0)  # no penalty on the bias row

  def fit(zm, _, m, k, q):
    kk = jnp.maximum(k, 1).astype(x.dtype)
    step = 1.0 / (_lmax(zm.T @ zm / kk) / 2 + l2) if lr is None else lr

    def body(_, w):
      g = zm.T @ (m[:, None] * (jax.nn.softmax(zm @ w) - onehot)) / kk
      return w - step * (g + l2 * reg * w)

    return q @ jax.lax.fori_loop(0, num_iters, body, jnp.zeros((z.shape[1], num_classes), x.dtype))

  return _per_prefix(fit, z, None)


# Garg et al.'s baselines, ready to call as ``fn(x, y)``.
REGRESSION_BASELINES = {
    "least_squares": least_squares,
    "averaging": averaging,
    "knn_3": functools.partial(knn, num_neighbors=3),
    "lasso": functools.partial(lasso, alpha=0.1),
}
