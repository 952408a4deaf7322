"""Teachers over a discrete set of tasks (and uniform sampling of either space).

Every teacher is a :class:`metalearn.curriculum.base.Teacher`: pure ``init`` / ``propose`` /
``observe`` functions of an explicit pytree state (NamedTuples of fixed-size arrays), so they
run inside ``jit`` and ``lax.scan`` and their state checkpoints with the rest of a train state.

- :func:`uniform`: every task equally likely (the baseline).
- :func:`fixed_order`: a textbook; arms in a given order, moving on by a count or a mastery rule.
- :func:`tscl`: Matiisen, Oliver, Cohen and Schulman (2017), *Teacher-Student Curriculum
  Learning* (arXiv:1707.00183), the *window* algorithm: progress on a task is the absolute slope
  of its recent scores against time.
- :func:`exp3s`: Graves, Bellemare, Menick, Munos and Kavukcuoglu (2017), *Automated Curriculum
  Learning for Neural Networks* (ICML, arXiv:1704.03003): the Exp3.S adversarial bandit
  (Auer et al. 2002) rewarded with learning progress rescaled by recent reward quantiles.

Scores are higher-is-better floats. A discrete task is an ``int32`` scalar in ``[0, n)``; a box
task is a ``float32[dims]`` point of ``[0, 1]^dims``.
"""

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.curriculum.base import GRID, TEACHERS, Teacher, TeacherSpec
from metalearn.registry import ConfigError, Option


def _check_space(space) -> tuple[str, int]:
  if (not isinstance(space, (tuple, list)) or len(space) != 2 or space[0] not in ("discrete", "box")
      or not isinstance(space[1], (int, np.integer)) or space[1] < 1):
    raise ValueError(f"space must be ('discrete', num_tasks) or ('box', dims) with a positive "
                     f"int size, got {space!r}")
  return (str(space[0]), int(space[1]))


def _uniform_among(key: jax.Array, mask_N: jax.Array) -> jax.Array:
  """A uniformly random index among the ``True`` entries of ``mask_N`` (which must have one)."""
  return jax.random.categorical(key, jnp.where(mask_N, 0.0, -jnp.inf)).astype(jnp.int32)


# ------------------------------------------------------------------------------------ uniform


class UniformState(NamedTuple):
  """``count``: observations so far (kept so the state is a non-empty, checkpointable tree)."""
  count: jax.Array


def uniform(space) -> Teacher:
  """Uniform sampling: ``P(i) = 1/n`` over ``n`` arms, or ``u ~ U[0, 1]^dims`` over the box.

  Args:
    space: ``("discrete", num_tasks)`` or ``("box", dims)``.
  """
  kind, size = _check_space(space)

  def propose(state, key):
    del state
    if kind == "discrete":
      return jax.random.randint(key, (), 0, size, dtype=jnp.int32)
    return jax.random.uniform(key, (size,), jnp.float32)

  return Teacher(init=lambda key: UniformState(jnp.zeros((), jnp.int32)), propose=propose,
                 observe=lambda state, task, score: UniformState(state.count + 1),
                 space=(kind, size))


# ------------------------------------------------------------------------------- fixed order


class FixedOrderState(NamedTuple):
  """``position``: index into the order; ``practised``: observations of the current arm."""
  position: jax.Array
  practised: jax.Array


def fixed_order(num_tasks: int, order: Sequence[int] | None = None,
                steps_per_task: int | None = None, mastery: float | None = None) -> Teacher:
  """A textbook: arms in a fixed order, each until a count and/or a mastery score is reached.

  The teacher proposes ``order[p]``. Observing the current arm increments its count ``c``; it
  moves to ``p + 1`` (and resets ``c``) once ``c >= steps_per_task`` or the observed score is
  ``>= mastery``, whichever comes first when both are given. It stays on the last arm. Scores of
  other arms are ignored.

  Args:
    num_tasks: number of arms.
    order: the arms in reading order (default ``0, 1, ..., num_tasks - 1``); may repeat or skip.
    steps_per_task: observations of an arm before moving on.
    mastery: score at which the current arm counts as learned.
  """
  _check_space(("discrete", num_tasks))
  if steps_per_task is None and mastery is None:
    raise ValueError("fixed_order needs a rule to move on: give steps_per_task and/or mastery")
  if steps_per_task is not None and steps_per_task < 1:
    raise ValueError(f"steps_per_task must be >= 1, got {steps_per_task}")
  order_np = np.arange(num_tasks) if order is None else np.asarray(order, np.int64).reshape(-1)
  if order_np.size == 0 or order_np.min() < 0 or order_np.max() >= num_tasks:
    raise ValueError(f"order must be a non-empty sequence of arms in [0, {num_tasks}), got "
                     f"{order!r}")
  order_L = jnp.asarray(order_np, jnp.int32)
  last = order_L.shape[0] - 1

  def observe(state, task, score):
    on_current = jnp.asarray(task, jnp.int32) == order_L[state.position]
    practised = state.practised + on_current.astype(jnp.int32)
    done = jnp.zeros((), bool)
    if steps_per_task is not None:
      done = done | (practised >= steps_per_task)
    if mastery is not None:
      done = done | (on_current & (score >= mastery))
    advance = done & (state.position < last)
    return FixedOrderState(state.position + advance.astype(jnp.int32),
                           jnp.where(advance, 0, practised))

  return Teacher(
      init=lambda key: FixedOrderState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)),
      propose=lambda state, key: order_L[state.position], observe=observe,
      space=("discrete", num_tasks))


# ---------------------------------------------------------------------------------------- TSCL


class TSCLState(NamedTuple):
  """Per arm, a ring buffer of its last ``W`` (time, score) observations.

  Attributes:
    times_NW, scores_NW: the buffers (slot ``counts % W`` is written next).
    counts_N: observations of each arm so far.
    step: observations of any arm so far (the clock).
  """
  times_NW: jax.Array
  scores_NW: jax.Array
  counts_N: jax.Array
  step: jax.Array


def window_slopes(state: TSCLState) -> jax.Array:
  """Least-squares slope of score against time per arm, over its buffered observations.

  ``slope_i = sum_w (t_w - tbar)(s_w - sbar) / sum_w (t_w - tbar)^2`` over the ``min(c_i, W)``
  valid entries; 0 for an arm with fewer than two observations.
  """
  window = state.times_NW.shape[1]
  valid_NW = jnp.arange(window)[None, :] < jnp.minimum(state.counts_N, window)[:, None]
  m_N = jnp.maximum(valid_NW.sum(-1), 1)
  tbar_N = jnp.where(valid_NW, state.times_NW, 0).sum(-1) / m_N
  sbar_N = jnp.where(valid_NW, state.scores_NW, 0).sum(-1) / m_N
  dt_NW = jnp.where(valid_NW, state.times_NW - tbar_N[:, None], 0)
  ds_NW = jnp.where(valid_NW, state.scores_NW - sbar_N[:, None], 0)
  var_N = (dt_NW ** 2).sum(-1)
  ok_N = (state.counts_N >= 2) & (var_N > 0)
  return jnp.where(ok_N, (dt_NW * ds_NW).sum(-1) / jnp.where(ok_N, var_N, 1), 0.0)


def tscl(num_tasks: int, window: int = 10, policy: str = "epsilon_greedy", epsilon: float = 0.1,
         temperature: float = 1e-3) -> Teacher:
  """Teacher-Student Curriculum Learning, the window algorithm (Matiisen et al. 2017).

  Each arm ``i`` keeps its last ``window`` observations ``(t, s)`` (``t``: the teacher's clock,
  one tick per observation of any arm). Its learning progress is the absolute slope
  ``|beta_i|`` of the least-squares line ``s ~ alpha + beta_i t`` (:func:`window_slopes`):
  a task whose score rises *or falls* (forgetting) is worth practising. Arms never tried are
  proposed first (uniformly among them). Then

  - ``epsilon_greedy``: with probability ``epsilon`` a uniform arm, else
    ``argmax_i |beta_i|`` (ties broken uniformly at random);
  - ``boltzmann``: ``P(i) ∝ exp(|beta_i| / temperature)``.

  The defaults (window 10, epsilon 0.1) are ours; the temperature's scale depends on how fast
  scores move per tick.

  Args:
    num_tasks: number of arms.
    window: observations kept per arm (>= 2).
    policy: ``"epsilon_greedy"`` or ``"boltzmann"``.
    epsilon: exploration probability of the epsilon-greedy policy.
    temperature: Boltzmann temperature, in units of score per tick.
  """
  _check_space(("discrete", num_tasks))
  if window < 2:
    raise ValueError(f"window must be >= 2 to fit a slope, got {window}")
  if policy not in ("epsilon_greedy", "boltzmann"):
    raise ValueError(f"policy must be 'epsilon_greedy' or 'boltzmann', got {policy!r}")
  if not 0 <= epsilon <= 1:
    raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")

  def init(key):
    del key
    return TSCLState(jnp.zeros((num_tasks, window), jnp.float32),
                     jnp.zeros((num_tasks, window), jnp.float32),
                     jnp.zeros((num_tasks,), jnp.int32), jnp.zeros((), jnp.int32))

  def propose(state, key):
    k_untried, k_explore, k_random, k_pick = jax.random.split(key, 4)
    progress_N = jnp.abs(window_slopes(state))
    if policy == "epsilon_greedy":
      greedy = _uniform_among(k_pick, progress_N == progress_N.max())
      explore = jax.random.uniform(k_explore) < epsilon
      arm = jnp.where(explore, jax.random.randint(k_random, (), 0, num_tasks, jnp.int32), greedy)
    else:
      arm = jax.random.categorical(k_pick, progress_N / temperature).astype(jnp.int32)
    untried_N = state.counts_N == 0
    return jnp.where(untried_N.any(), _uniform_among(k_untried, untried_N), arm)

  def observe(state, task, score):
    task = jnp.asarray(task, jnp.int32)
    slot = state.counts_N[task] % window
    return TSCLState(
        state.times_NW.at[task, slot].set(state.step.astype(jnp.float32)),
        state.scores_NW.at[task, slot].set(jnp.asarray(score, jnp.float32)),
        state.counts_N.at[task].add(1), state.step + 1)

  return Teacher(init=init, propose=propose, observe=observe, space=("discrete", num_tasks))


# -------------------------------------------------------------------------------------- Exp3.S


class Exp3SState(NamedTuple):
  """Exp3.S state.

  Attributes:
    log_weights_N: ``w_t`` (shifted so that ``max_i w_t,i = 0``; the policy is shift-invariant).
    last_score_N: the last score seen on each arm; ``seen_N``: whether there is one.
    rewards_H: ring buffer of the last ``H`` unscaled rewards (slot ``num_rewards % H`` next).
    sorted_rewards_H: the same rewards in ascending order (``inf`` beyond ``num_rewards``).
    num_rewards: rewards seen so far (= observations, ``t - 1`` at step ``t``).
  """
  log_weights_N: jax.Array
  last_score_N: jax.Array
  seen_N: jax.Array
  rewards_H: jax.Array
  sorted_rewards_H: jax.Array
  num_rewards: jax.Array


def exp3s_policy(log_weights_N: jax.Array, epsilon: float) -> jax.Array:
  """``pi_t(i) = (1 - epsilon) exp(w_t,i) / sum_j exp(w_t,j) + epsilon / N``."""
  n = log_weights_N.shape[0]
  return (1 - epsilon) * jax.nn.softmax(log_weights_N) + epsilon / n


def sorted_insert(sorted_H: jax.Array, new: jax.Array, old: jax.Array,
                  evict: jax.Array) -> jax.Array:
  """Inserts ``new`` into an ascending, ``inf``-padded array, first removing one ``old`` if
  ``evict``; ``O(H)`` vector operations (a sort per step costs ``O(H log H)`` and is far slower
  on CPU)."""
  size = sorted_H.shape[0]
  k_H = jnp.arange(size)
  i = jnp.sum(sorted_H < old)  # the first copy of ``old``
  removed_H = jnp.where(evict & (k_H >= i), jnp.append(sorted_H[1:], jnp.inf), sorted_H)
  j = jnp.sum(removed_H < new)
  shifted_H = jnp.append(new, removed_H[:-1])  # shifted_H[k] = removed_H[k - 1]
  return jnp.where(k_H < j, removed_H, jnp.where(k_H == j, new, shifted_H))


def sorted_quantiles(sorted_H: jax.Array, count: jax.Array, qs: Sequence[float]) -> jax.Array:
  """Quantiles (linear interpolation) of the first ``min(count, H)`` entries of an ascending
  array."""
  n = jnp.clip(count, 1, sorted_H.shape[0])
  out = []
  for q in qs:
    pos = q * (n - 1).astype(jnp.float32)
    lo = jnp.floor(pos).astype(jnp.int32)
    frac = pos - lo
    out.append(sorted_H[lo] * (1 - frac) + sorted_H[jnp.minimum(lo + 1, n - 1)] * frac)
  return jnp.stack(out)


def rescale_reward(reward: jax.Array, q_lo: jax.Array, q_hi: jax.Array) -> jax.Array:
  """Graves et al.'s map into ``[-1, 1]``: -1 below ``q_lo``, 1 above ``q_hi``, linear between.

  ``r = 2 (nu - q_lo) / (q_hi - q_lo) - 1`` clipped to ``[-1, 1]``; when ``q_lo = q_hi`` it is
  ``sign(nu - q_lo)``.
  """
  span = q_hi - q_lo
  linear = jnp.clip(2 * (reward - q_lo) / jnp.where(span > 0, span, 1.0) - 1, -1.0, 1.0)
  return jnp.where(span > 0, linear, jnp.sign(reward - q_lo))


def exp3s(num_tasks: int, eta: float = 1e-3, beta: float = 0.0, epsilon: float = 0.05,
          alpha: float | None = None, reward: str = "progress", history: int = 1000,
          quantiles: tuple[float, float] = (0.2, 0.8)) -> Teacher:
  """Exp3.S over tasks rewarded with learning progress (Graves et al. 2017, Algorithm 1).

  Policy: ``pi_t(i) = (1 - eps) softmax(w_t)_i + eps / N`` (:func:`exp3s_policy`). After the
  learner practised arm ``a_t`` and scored ``s_t`` on it:

  1. progress ``nu_t = s_t - s_prev(a_t)`` (``reward="progress"``, the score gain since the arm
     was last seen; 0 on an arm's first observation) or ``|nu_t|``
     (``reward="absolute_progress"``);
  2. rescaling into ``[-1, 1]`` by the quantiles ``q_lo, q_hi`` (20th and 80th percentiles) of
     the recent unscaled rewards, ``nu_t`` included (:func:`rescale_reward`). The paper keeps a
     reservoir sample of the whole history; we keep the last ``history`` rewards, a fixed-size
     ring buffer that follows the non-stationary reward scale;
  3. importance-weighted reward ``r~_t,i = (r_t [i = a_t] + beta) / pi_t(i)``;
  4. fixed-share update, ``a_i = w_t,i + eta r~_t,i``:
     ``w_t+1,i = log[(1 - alpha_t) e^{a_i} + alpha_t / (N - 1) sum_{j != i} e^{a_j}]``,
     with ``alpha_t = 1 / t`` unless ``alpha`` is given (a constant share); then the weights
     are shifted so their maximum is 0.

  Defaults: ``eta = 1e-3, beta = 0, epsilon = 0.05`` are the paper's constants for all its
  experiments; ``alpha_t = 1 / t`` is the schedule of public re-implementations of its
  Algorithm 1; the buffer size (1000) is ours. The quantiles come from an incrementally sorted
  copy of the buffer (:func:`sorted_insert`), ``O(H)`` per step.

  Args:
    num_tasks: number of arms (>= 2).
    eta: step size of the exponential weights.
    beta: implicit-exploration bonus added to every arm's reward before importance weighting.
    epsilon: uniform exploration mixed into the policy.
    alpha: constant weight share; ``None`` for ``alpha_t = 1 / t``.
    reward: ``"progress"`` or ``"absolute_progress"``.
    history: unscaled rewards kept for the quantiles.
    quantiles: the low and high quantiles (fractions).
  """
  _check_space(("discrete", num_tasks))
  if num_tasks < 2:
    raise ValueError(f"exp3s needs at least 2 arms (the weight share divides by N - 1), got "
                     f"{num_tasks}")
  if reward not in ("progress", "absolute_progress"):
    raise ValueError(f"reward must be 'progress' or 'absolute_progress', got {reward!r}")
  if not 0 <= epsilon <= 1:
    raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
  if alpha is not None and not 0 <= alpha <= 1:
    raise ValueError(f"alpha must be in [0, 1] or None (for 1/t), got {alpha}")
  if history < 1 or not 0 <= quantiles[0] <= quantiles[1] <= 1:
    raise ValueError(f"need history >= 1 and 0 <= q_lo <= q_hi <= 1, got {history}, {quantiles}")

  def init(key):
    del key
    return Exp3SState(jnp.zeros((num_tasks,), jnp.float32), jnp.zeros((num_tasks,), jnp.float32),
                      jnp.zeros((num_tasks,), bool), jnp.zeros((history,), jnp.float32),
                      jnp.full((history,), jnp.inf, jnp.float32), jnp.zeros((), jnp.int32))

  def propose(state, key):
    pi_N = exp3s_policy(state.log_weights_N, epsilon)
    return jax.random.categorical(key, jnp.log(pi_N)).astype(jnp.int32)

  def observe(state, task, score):
    task = jnp.asarray(task, jnp.int32)
    score = jnp.asarray(score, jnp.float32)
    nu = jnp.where(state.seen_N[task], score - state.last_score_N[task], 0.0)
    if reward == "absolute_progress":
      nu = jnp.abs(nu)
    slot = state.num_rewards % history
    sorted_H = sorted_insert(state.sorted_rewards_H, nu, state.rewards_H[slot],
                             state.num_rewards >= history)
    rewards_H = state.rewards_H.at[slot].set(nu)
    q_lo, q_hi = sorted_quantiles(sorted_H, state.num_rewards + 1, quantiles)
    r = rescale_reward(nu, q_lo, q_hi)
    pi_N = exp3s_policy(state.log_weights_N, epsilon)
    played_N = jnp.arange(num_tasks) == task
    a_N = state.log_weights_N + eta * (jnp.where(played_N, r, 0.0) + beta) / pi_N
    t = (state.num_rewards + 1).astype(jnp.float32)
    share = 1.0 / t if alpha is None else alpha
    m = a_N.max()
    e_N = jnp.exp(a_N - m)
    mixed_N = (1 - share) * e_N + share / (num_tasks - 1) * (e_N.sum() - e_N)
    w_N = m + jnp.log(jnp.maximum(mixed_N, jnp.finfo(jnp.float32).tiny))
    return Exp3SState(w_N - w_N.max(), state.last_score_N.at[task].set(score),
                      state.seen_N.at[task].set(True), rewards_H, sorted_H, state.num_rewards + 1)

  return Teacher(init=init, propose=propose, observe=observe, space=("discrete", num_tasks))


_UNIT = dict(ge=0, le=1)
TEACHERS.register(TeacherSpec(
    name="uniform", doc="every task equally likely", factory=uniform,
    spaces=("discrete", "box"), takes_space=True))
TEACHERS.register(TeacherSpec(
    name="fixed", doc="a textbook: arms in a fixed order, moving on by count or mastery",
    factory=fixed_order, spaces=("discrete",), arms=True,
    options=dict(order=Option(None, optional=True, element=int, check=lambda o: o is None or (
                     len(o) > 0 and min(o) >= 0), accepts="None or a non-empty tuple of arms",
                     doc="the arms in reading order (None: 0, 1, ...)"),
                 steps_per_task=Option(None, optional=True, check=lambda v: v is None or (
                     isinstance(v, int) and v >= 1), accepts="None or an int >= 1",
                     doc="observations of an arm before moving on"),
                 mastery=Option(None, optional=True, check=lambda v: v is None or isinstance(
                     v, (int, float)), accepts="None or a score", doc="score at which the arm "
                     "counts as learned (give it and/or steps_per_task)"),
                 grid=GRID),
    check=lambda config: _need_rule(config.curriculum)))
TEACHERS.register(TeacherSpec(
    name="tscl", doc="Teacher-Student Curriculum Learning, window algorithm (Matiisen et al. "
    "2017)", factory=tscl, spaces=("discrete",), arms=True,
    options=dict(window=Option(10, ge=2, doc="observations kept per arm"),
                 policy=Option("epsilon_greedy", choices=("epsilon_greedy", "boltzmann"),
                               doc="how the arm is picked"),
                 epsilon=Option(0.1, **_UNIT, doc="exploration of epsilon_greedy"),
                 temperature=Option(1e-3, gt=0, doc="Boltzmann temperature"), grid=GRID)))
TEACHERS.register(TeacherSpec(
    name="exp3s", doc="the Exp3.S bandit rewarded with learning progress (Graves et al. 2017)",
    factory=exp3s, spaces=("discrete",), arms=True,
    options=dict(eta=Option(1e-3, gt=0, doc="step size of the exponential weights"),
                 beta=Option(0.0, ge=0, doc="implicit-exploration bonus"),
                 epsilon=Option(0.05, **_UNIT, doc="uniform exploration"),
                 alpha=Option(None, optional=True, check=lambda a: a is None or (
                     isinstance(a, (int, float)) and 0 <= a <= 1),
                     accepts="None (1/t) or a share in [0, 1]", doc="weight share"),
                 reward=Option("progress", choices=("progress", "absolute_progress"),
                               doc="the reward"),
                 history=Option(1000, ge=1, doc="rewards kept for the quantiles"),
                 quantiles=Option((0.2, 0.8), length=2, check=lambda q: 0 <= q[0] <= q[1] <= 1,
                                  accepts="(low, high), 0 <= low <= high <= 1",
                                  doc="the reward-rescaling quantiles"),
                 grid=GRID)))


def _need_rule(curriculum) -> None:
  if curriculum.steps_per_task is None and curriculum.mastery is None:
    raise ConfigError("curriculum.name='fixed' needs a rule to move on: set "
                      "curriculum.steps_per_task and/or curriculum.mastery")
