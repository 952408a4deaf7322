"""ALP-GMM: absolute learning progress + Gaussian mixtures over continuous task parameters.

Portelas, Colas, Hofmann and Oudeyer (2019), *Teacher algorithms for curriculum learning of
Deep RL in continuously parameterized environments* (CoRL, arXiv:1910.07224). Defaults follow
the authors' code (flowersteam/teachDeepRL, ``ALPGMM``): GMMs with 2..10 components chosen by
AIC, refitted every 250 episodes on the last 250 (parameters, ALP) pairs, 250 bootstrap
episodes of uniform sampling, 20% uniform exploration afterwards, ALP computed once more than 5
past episodes exist.

The mixture is fitted by EM written in JAX (:func:`fit_gmm`, :func:`select_gmm`): a fixed number
of k-means++ seeded Lloyd steps, then a fixed number of EM iterations, for every ``k`` at once
(``vmap`` over ``k``, components beyond ``k`` masked out), with a small ridge on the covariances
(``reg_covar`` of scikit-learn, which the reference uses).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from metalearn.curriculum.base import TEACHERS, Teacher, TeacherSpec
from metalearn.registry import ConfigError, Option

_LOG_2PI = 1.8378770664093453


class GMM(NamedTuple):
  """A Gaussian mixture padded to ``K`` components (inactive ones have weight 0).

  Attributes:
    weights_K: mixture weights (sum to 1 over the active components).
    means_KD: component means.
    covs_KDD: component covariances (diagonal ones stored as full matrices).
  """
  weights_K: jax.Array
  means_KD: jax.Array
  covs_KDD: jax.Array


def _component_log_probs(gmm: GMM, x_ND: jax.Array) -> jax.Array:
  """``log w_k + log N(x_n | mu_k, Sigma_k)`` as ``[N, K]`` (``-inf`` for inactive ``k``).

  With ``Sigma_k = L_k L_k^T`` and ``P_k = L_k^{-T}``: ``(x - mu)^T Sigma^{-1} (x - mu) =
  |(x - mu)^T P_k|^2`` and ``log det Sigma_k = -2 sum log diag P_k``.
  """
  dims = x_ND.shape[-1]
  chol_KDD = jnp.linalg.cholesky(gmm.covs_KDD)
  eye = jnp.broadcast_to(jnp.eye(dims, dtype=x_ND.dtype), chol_KDD.shape)
  prec_chol_KDD = jnp.swapaxes(solve_triangular(chol_KDD, eye, lower=True), -1, -2)
  z_KND = (jnp.einsum("nd,kde->kne", x_ND, prec_chol_KDD)
           - jnp.einsum("kd,kde->ke", gmm.means_KD, prec_chol_KDD)[:, None])
  log_det_K = 2 * jnp.log(jnp.diagonal(chol_KDD, axis1=-2, axis2=-1)).sum(-1)
  log_pdf_KN = -0.5 * (dims * _LOG_2PI + log_det_K[:, None] + (z_KND ** 2).sum(-1))
  log_w_K = jnp.where(gmm.weights_K > 0, jnp.log(jnp.maximum(gmm.weights_K, 1e-30)), -jnp.inf)
  return log_pdf_KN.T + log_w_K


def gmm_log_likelihood(gmm: GMM, x_ND: jax.Array, valid_N: jax.Array | None = None) -> jax.Array:
  """``sum_n log sum_k w_k N(x_n | mu_k, Sigma_k)`` over the valid rows."""
  ll_N = jax.nn.logsumexp(_component_log_probs(gmm, x_ND), axis=-1)
  return ll_N.sum() if valid_N is None else jnp.where(valid_N, ll_N, 0.0).sum()


def _m_step(resp_NK, x_ND, active_K, ridge, diagonal):
  """Weights, means and (ridged) covariances from responsibilities."""
  dims = x_ND.shape[-1]
  nk_K = resp_NK.sum(0) + 10 * jnp.finfo(jnp.float32).eps
  weights_K = jnp.where(active_K, nk_K, 0.0)
  weights_K = weights_K / weights_K.sum()
  means_KD = (resp_NK.T @ x_ND) / nk_K[:, None]
  diff_KND = x_ND[None] - means_KD[:, None]
  covs_KDD = jnp.einsum("nk,knd,kne->kde", resp_NK, diff_KND, diff_KND) / nk_K[:, None, None]
  if diagonal:
    covs_KDD = covs_KDD * jnp.eye(dims)
  return GMM(weights_K, means_KD, covs_KDD + ridge * jnp.eye(dims))


def fit_gmm(key: jax.Array, x_ND: jax.Array, valid_N: jax.Array, k: jax.Array, max_k: int,
            iterations: int = 100, tol: float = 1e-3, kmeans_iterations: int = 10,
            ridge: float = 1e-6, covariance: str = "full") -> tuple[GMM, jax.Array]:
  """EM for a ``k``-component mixture on the valid rows of ``x_ND``; jittable, ``k`` traced.

  Initialisation (as scikit-learn's default, k-means): k-means++ seeding, ``kmeans_iterations``
  Lloyd steps, then one M-step from the hard assignments. Then EM steps until the mean
  log-likelihood per point changes by less than ``tol`` or ``iterations`` steps (scikit-learn's
  ``tol`` and ``max_iter``; a ``while_loop``, so it jits and vmaps):

  - E: ``gamma_nk = w_k N(x_n | mu_k, Sigma_k) / sum_j w_j N(x_n | mu_j, Sigma_j)``;
  - M: ``N_k = sum_n gamma_nk``, ``w_k = N_k / N``, ``mu_k = sum_n gamma_nk x_n / N_k``,
    ``Sigma_k = sum_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + ridge I``.

  Args:
    key: for the seeding.
    x_ND: data (rows with ``valid_N`` False are ignored).
    valid_N: which rows are data.
    k: number of components (``1 <= k <= max_k``, may be traced).
    max_k: the padded number of components of the result.
    iterations: at most this many EM steps.
    tol: convergence threshold on the change of the mean log-likelihood per point.
    kmeans_iterations: Lloyd steps of the initialisation.
    ridge: added to every covariance's diagonal.
    covariance: ``"full"`` or ``"diag"``.

  Returns:
    ``(gmm, log_likelihood)`` with ``gmm`` padded to ``max_k`` components.
  """
  diagonal = covariance == "diag"
  n = x_ND.shape[0]
  active_K = jnp.arange(max_k) < k
  valid_f_N = valid_N.astype(x_ND.dtype)

  def seed(c, carry):  # k-means++: next centre with probability ∝ squared distance
    centres_KD, d2_N, key = carry
    key, sub = jax.random.split(key)
    logits_N = jnp.where(valid_N, jnp.where(c == 0, 0.0, jnp.log(d2_N + 1e-20)), -jnp.inf)
    centre_D = x_ND[jax.random.categorical(sub, logits_N)]
    d2_N = jnp.minimum(d2_N, ((x_ND - centre_D) ** 2).sum(-1))
    return centres_KD.at[c].set(centre_D), d2_N, key

  centres_KD, _, _ = jax.lax.fori_loop(
      0, max_k, seed, (jnp.zeros((max_k, x_ND.shape[1]), x_ND.dtype),
                       jnp.full((n,), jnp.inf, x_ND.dtype), key))

  def assign(centres_KD):
    d2_NK = ((x_ND[:, None] - centres_KD[None]) ** 2).sum(-1)
    labels_N = jnp.argmin(jnp.where(active_K, d2_NK, jnp.inf), axis=-1)
    return jax.nn.one_hot(labels_N, max_k, dtype=x_ND.dtype) * valid_f_N[:, None]

  def lloyd(_, centres_KD):
    onehot_NK = assign(centres_KD)
    counts_K = onehot_NK.sum(0)
    means_KD = (onehot_NK.T @ x_ND) / jnp.maximum(counts_K, 1)[:, None]
    return jnp.where((counts_K > 0)[:, None], means_KD, centres_KD)

  centres_KD = jax.lax.fori_loop(0, kmeans_iterations, lloyd, centres_KD)
  gmm = _m_step(assign(centres_KD), x_ND, active_K, ridge, diagonal)

  num_valid = jnp.maximum(valid_f_N.sum(), 1)

  def em(carry):
    i, gmm, mean_ll, _ = carry
    log_p_NK = _component_log_probs(gmm, x_ND)
    ll_N1 = jax.nn.logsumexp(log_p_NK, axis=-1, keepdims=True)
    resp_NK = jnp.where(active_K, jnp.exp(log_p_NK - ll_N1), 0.0) * valid_f_N[:, None]
    new_ll = (ll_N1[:, 0] * valid_f_N).sum() / num_valid  # of the parameters before this step
    return i + 1, _m_step(resp_NK, x_ND, active_K, ridge, diagonal), new_ll, mean_ll

  def running(carry):
    i, _, mean_ll, prev_ll = carry
    return (i < iterations) & ~(jnp.abs(mean_ll - prev_ll) < tol)

  _, gmm, _, _ = jax.lax.while_loop(
      running, em, (jnp.zeros((), jnp.int32), gmm, jnp.asarray(-jnp.inf, x_ND.dtype),
                    jnp.asarray(jnp.inf, x_ND.dtype)))
  return gmm, gmm_log_likelihood(gmm, x_ND, valid_N)


def num_gmm_parameters(k, dims: int, covariance: str = "full"):
  """Free parameters: ``k (D + D(D+1)/2) + k - 1`` (full) or ``k 2D + k - 1`` (diagonal)."""
  per = dims + (dims * (dims + 1) // 2 if covariance == "full" else dims)
  return k * per + k - 1


def select_gmm(key: jax.Array, x_ND: jax.Array, valid_N: jax.Array, k_min: int = 2,
               k_max: int = 10, criterion: str = "aic", **fit_kwargs) -> tuple[GMM, jax.Array]:
  """Fits ``k = k_min..k_max`` components (vmapped) and keeps the best by AIC or BIC.

  ``AIC = -2 log L + 2 p``, ``BIC = -2 log L + p log N`` with ``p`` from
  :func:`num_gmm_parameters`; fits with a non-finite criterion are never chosen.

  Returns:
    ``(gmm, criteria)``: the chosen mixture (padded to ``k_max`` components) and the criterion
    of every ``k`` (``inf`` where the fit failed; all ``inf`` means none is usable).
  """
  ks = jnp.arange(k_min, k_max + 1)
  gmms, ll = jax.vmap(lambda sub, k: fit_gmm(sub, x_ND, valid_N, k, k_max, **fit_kwargs))(
      jax.random.split(key, ks.shape[0]), ks)
  p = num_gmm_parameters(ks, x_ND.shape[-1], fit_kwargs.get("covariance", "full"))
  penalty = 2.0 * p if criterion == "aic" else p * jnp.log(jnp.maximum(valid_N.sum(), 1))
  crit = -2 * ll + penalty
  finite = jnp.isfinite(crit) & jax.vmap(
      lambda g: jnp.all(jnp.isfinite(g.means_KD)) & jnp.all(jnp.isfinite(g.covs_KDD)))(gmms)
  crit = jnp.where(finite, crit, jnp.inf)
  return jax.tree.map(lambda a: a[jnp.argmin(crit)], gmms), crit


class ALPGMMState(NamedTuple):
  """ALP-GMM state (fixed-size buffers; ``count`` episodes observed so far).

  Attributes:
    count: episodes observed.
    history_params_DH, history_scores_H: ring buffer of past (task, score) for the
      nearest-neighbour search (slot ``count % H`` is written next; tasks stored
      dimension-major, which vectorises the distance computation).
    window_x_WE: ring buffer of the last ``W`` (task, ALP) rows the GMM is fitted on
      (``E = dims + 1``).
    gmm: the current mixture over (task, ALP), ``k_max`` components.
    fitted: whether ``gmm`` holds a fit.
    key_data: raw key for the EM seeding (folded with ``count`` at each fit).
  """
  count: jax.Array
  history_params_DH: jax.Array
  history_scores_H: jax.Array
  window_x_WE: jax.Array
  gmm: GMM
  fitted: jax.Array
  key_data: jax.Array


def nearest_alp(history_params_DH, history_scores_H, count, task_D, score, min_history: int):
  """``|score - score(nearest past task)|`` (Euclidean) over the buffer; 0 while the history has
  fewer than ``min_history`` entries. Ties go to the lowest slot."""
  dims, size = history_params_DH.shape
  # Unrolled over the (few) dimensions, and min + where instead of argmin: both several times
  # faster on CPU than the reductions they replace.
  d2_H = sum((history_params_DH[d] - task_D[d]) ** 2 for d in range(dims))
  slot_H = jnp.arange(size)
  d2_H = jnp.where(slot_H < jnp.minimum(count, size), d2_H, jnp.inf)
  nearest = jnp.min(jnp.where(d2_H == d2_H.min(), slot_H, size - 1))
  alp = jnp.abs(score - history_scores_H[nearest])
  return jnp.where(count >= min_history, alp, 0.0)


def alp_gmm(dims: int, fit_every: int = 250, fit_window: int = 250, bootstrap: int = 250,
            k_min: int = 2, k_max: int = 10, criterion: str = "aic",
            random_fraction: float = 0.2, history: int = 20000, min_history: int = 6,
            em_iterations: int = 100, tol: float = 1e-3, ridge: float = 1e-6,
            covariance: str = "full") -> Teacher:
  """ALP-GMM teacher over the unit box ``[0, 1]^dims`` (Portelas et al. 2019, Algorithm 1).

  Observe ``(p_t, s_t)``: the absolute learning progress is
  ``alp_t = |s_t - s_nn|`` where ``s_nn`` is the score of the past task nearest to ``p_t``
  (:func:`nearest_alp`); ``(p_t, alp_t)`` joins the fit window. After ``bootstrap`` episodes and
  every ``fit_every`` episodes, mixtures with ``k_min..k_max`` components are fitted to the last
  ``fit_window`` rows of ``(p, alp)`` and the best by ``criterion`` kept (:func:`select_gmm`).

  Propose: uniform ``U[0, 1]^dims`` during the bootstrap and with probability
  ``random_fraction``; else pick component ``k`` with probability ``∝ mu_k^alp`` (its mean ALP;
  uniform when all are 0), sample ``p ~ N(mu_k^p, Sigma_k^pp)`` (the task part of the
  component) and clip it to the box.

  Args:
    dims: task-parameter dimensions.
    fit_every: episodes between fits.
    fit_window: most recent (task, ALP) rows a fit sees.
    bootstrap: episodes of uniform sampling before the first fit.
    k_min, k_max: range of mixture sizes tried.
    criterion: ``"aic"`` (the reference's) or ``"bic"``.
    random_fraction: probability of a uniform task after the bootstrap.
    history: past (task, score) pairs kept for the nearest-neighbour ALP (the reference keeps
      all; the oldest are dropped beyond this).
    min_history: past episodes needed before ALP is computed (earlier ALPs are 0).
    em_iterations: at most this many EM steps per fit (scikit-learn's ``max_iter``).
    tol: EM stops once the mean log-likelihood changes by less (scikit-learn's ``tol``).
    ridge: covariance ridge.
    covariance: ``"full"`` or ``"diag"``.

  Note:
    The periodic refit is a ``lax.cond``. ``vmap`` turns a batched ``cond`` into a ``select``
    that runs the fit every step: map over independent teacher states with ``lax.map`` (or a
    Python loop), not ``vmap``.
  """
  if not isinstance(dims, int) or dims < 1:
    raise ValueError(f"dims must be a positive int, got {dims!r}")
  if criterion not in ("aic", "bic"):
    raise ValueError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
  if covariance not in ("full", "diag"):
    raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
  if not 1 <= k_min <= k_max:
    raise ValueError(f"need 1 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
  if min(fit_every, fit_window, history) < 1 or bootstrap < 0 or not 0 <= random_fraction <= 1:
    raise ValueError("need fit_every, fit_window, history >= 1, bootstrap >= 0 and "
                     f"0 <= random_fraction <= 1; got {fit_every}, {fit_window}, {history}, "
                     f"{bootstrap}, {random_fraction}")
  e = dims + 1

  def init(key):
    eye = jnp.broadcast_to(jnp.eye(e, dtype=jnp.float32), (k_max, e, e))
    return ALPGMMState(
        jnp.zeros((), jnp.int32), jnp.zeros((dims, history), jnp.float32),
        jnp.zeros((history,), jnp.float32), jnp.zeros((fit_window, e), jnp.float32),
        GMM(jnp.full((k_max,), 1.0 / k_max, jnp.float32), jnp.zeros((k_max, e), jnp.float32),
            eye), jnp.zeros((), bool), jax.random.key_data(key))

  def fit(state):  # only the small fields go through the cond (no copy of the history)
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key_data), state.count)
    valid_W = jnp.arange(fit_window) < jnp.minimum(state.count, fit_window)
    gmm, crit = select_gmm(key, state.window_x_WE, valid_W, k_min, k_max, criterion,
                           iterations=em_iterations, tol=tol, ridge=ridge, covariance=covariance)
    ok = jnp.isfinite(crit).any()
    gmm = jax.tree.map(lambda new, old: jnp.where(ok, new, old), gmm, state.gmm)
    return gmm, state.fitted | ok

  def observe(state, task, score):
    task_D = jnp.asarray(task, jnp.float32).reshape(dims)
    score = jnp.asarray(score, jnp.float32)
    alp = nearest_alp(state.history_params_DH, state.history_scores_H, state.count, task_D,
                      score, min_history)
    h, w = state.count % history, state.count % fit_window
    state = state._replace(
        count=state.count + 1,
        history_params_DH=state.history_params_DH.at[:, h].set(task_D),
        history_scores_H=state.history_scores_H.at[h].set(score),
        window_x_WE=state.window_x_WE.at[w].set(jnp.append(task_D, alp)))
    refit = (state.count >= max(bootstrap, 1)) & (state.count % fit_every == 0)
    small = state._replace(history_params_DH=None, history_scores_H=None)
    gmm, fitted = jax.lax.cond(refit, fit, lambda s: (s.gmm, s.fitted), small)
    return state._replace(gmm=gmm, fitted=fitted)

  def propose(state, key):
    k_uniform, k_explore, k_comp, k_normal = jax.random.split(key, 4)
    uniform_D = jax.random.uniform(k_uniform, (dims,), jnp.float32)
    gmm = state.gmm
    active_K = gmm.weights_K > 0
    alp_K = jnp.where(active_K, jnp.maximum(gmm.means_KD[:, -1], 0.0), 0.0)
    logits_K = jnp.where(alp_K.sum() > 0, jnp.log(alp_K), jnp.where(active_K, 0.0, -jnp.inf))
    comp = jax.random.categorical(k_comp, logits_K)
    chol_DD = jnp.linalg.cholesky(gmm.covs_KDD[comp, :dims, :dims])
    sample_D = gmm.means_KD[comp, :dims] + chol_DD @ jax.random.normal(k_normal, (dims,))
    sample_D = jnp.clip(sample_D, 0.0, 1.0)
    use_uniform = ((~state.fitted) | (state.count < bootstrap)
                   | (jax.random.uniform(k_explore) < random_fraction)
                   | ~jnp.all(jnp.isfinite(sample_D)))
    return jnp.where(use_uniform, uniform_D, sample_D)

  return Teacher(init=init, propose=propose, observe=observe, space=("box", dims))


TEACHERS.register(TeacherSpec(
    name="alp_gmm", doc="ALP-GMM over a box of task parameters (Portelas et al. 2019)",
    factory=alp_gmm, spaces=("box",),
    options=dict(
        fit_every=Option(250, ge=1, doc="episodes between fits"),
        fit_window=Option(250, ge=1, doc="most recent (task, ALP) rows a fit sees"),
        bootstrap=Option(250, ge=0, doc="episodes of uniform sampling before the first fit"),
        k_min=Option(2, ge=1, doc="fewest mixture components tried"),
        k_max=Option(10, ge=1, doc="most mixture components tried"),
        criterion=Option("aic", choices=("aic", "bic"), doc="model selection"),
        random_fraction=Option(0.2, ge=0, le=1, doc="uniform tasks after the bootstrap"),
        history=Option(20000, ge=1, doc="past (task, score) pairs kept"),
        min_history=Option(6, ge=1, doc="past episodes before ALP is computed"),
        em_iterations=Option(100, ge=1, doc="EM steps per fit"),
        tol=Option(1e-3, gt=0, doc="EM tolerance"),
        ridge=Option(1e-6, ge=0, doc="covariance ridge"),
        covariance=Option("full", choices=("full", "diag"), doc="covariance kind")),
    check=lambda config: _k_range(config.curriculum)))


def _k_range(curriculum) -> None:
  if curriculum.k_min > curriculum.k_max:
    raise ConfigError(f"curriculum.k_min ({curriculum.k_min}) must be <= curriculum.k_max "
                      f"({curriculum.k_max})")
