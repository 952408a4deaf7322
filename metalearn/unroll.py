"""Unrolling a learner: ``T`` inner steps in one ``lax.scan``, returning the learning curve."""

import math

import jax
import jax.numpy as jnp

from metalearn.learners import Learner
from metalearn.tasks import Episode


DIFFERENTIATE = ("all", "steps", "final")


def unroll(learner: Learner, theta, state, episode: Episode, num_steps: int,
           remat: bool = False, measure=None, differentiate: str = "all"):
  """Runs ``num_steps`` inner steps from ``state``.

  Args:
    learner: any :class:`~metalearn.learners.Learner`.
    theta: meta-parameters.
    state: inner state to start from (``learner.init_state`` or a carried truncation state).
    episode: the task.
    num_steps: T, a Python int (static).
    remat: rematerialise for memory: each inner step is wrapped in ``jax.checkpoint`` and the
      steps are grouped into segments of ``ceil(sqrt(T))`` steps, each also checkpointed.
      Backprop then keeps only the carried state at segment boundaries and, while it
      recomputes one segment, that segment's per-step states: memory grows as ``sqrt(T)``
      instead of ``T``, for about one extra forward pass of compute.
    measure: ``(theta, state, episode) -> pytree`` recorded before and after every step;
      default ``learner.query_loss`` (the learning curve).
    differentiate: the curve entries gradients flow through (the objective's
      ``gradient_reads``): ``"all"``; ``"steps"``, all but ``curve[0]``; ``"final"``, only
      ``curve[T]``. The others are measured as constants (``stop_gradient``): an objective
      that ignores them would otherwise still pay a backward pass through each of those
      measurements (the cotangents XLA receives for them are zeros it cannot see through).
      Values are the same for every choice; with ``"final"`` and ``T > 1`` the last entry is
      measured once more, outside the scan, with its gradient.

  Returns:
    ``(final_state, curve)`` with ``curve[t]`` the query loss (or ``measure``) after ``t``
    steps, leading axis ``T + 1`` (``curve[0]`` is measured at ``state``). For an in-context
    learner (``learner.one_pass``) ``T + 1`` is the prompt length and ``curve[k]`` the loss
    after reading ``k`` examples, from one forward pass.
  """
  if differentiate not in DIFFERENTIATE:
    raise ValueError(f"differentiate must be one of {DIFFERENTIATE}, got {differentiate!r}")
  if learner.one_pass:  # reading the prompt: one causal forward pass
    if num_steps != episode.support_x.shape[0] - 1 or measure is not None:
      raise ValueError(f"an in-context learner's curve covers its whole prompt: num_steps must "
                       f"be {episode.support_x.shape[0] - 1} (prompt length - 1), got "
                       f"{num_steps}, and it takes no measure=")
    curve = (jax.checkpoint(learner.curve) if remat else learner.curve)(theta, episode)
    return state, curve
  step = jax.checkpoint(learner.step) if remat else learner.step
  measure = measure or learner.query_loss
  constant = lambda fn: lambda *args: jax.lax.stop_gradient(fn(*args))
  stack = lambda *xs: jax.tree.map(lambda *a: jnp.concatenate(a), *xs)
  first = lambda x: jax.tree.map(lambda a: a[None], x)
  if num_steps == 0:  # curve[0] is also curve[T]
    loss_0 = (constant(measure) if differentiate == "steps" else measure)(theta, state, episode)
    return state, first(loss_0)
  loss_0 = (measure if differentiate == "all" else constant(measure))(theta, state, episode)
  along = constant(measure) if differentiate == "final" else measure

  def body(s, _):
    s = step(theta, s, episode)
    return s, along(theta, s, episode)

  if not learner.first_step_apart:
    final_state, losses = _scan_steps(body, state, num_steps, remat)
    curve = stack(first(loss_0), losses)
  else:
    # The first step runs outside the scan (Learner.first_step_apart): under vmap over tasks
    # its input state is often the shared theta, and keeping it out of the (necessarily
    # batched) scan carry lets that step use one large matmul for all tasks instead of one
    # small matmul per task.
    state_1 = step(theta, state, episode)
    if num_steps == 1:
      return state_1, stack(first(loss_0), first(measure(theta, state_1, episode)))
    final_state, losses = _scan_steps(body, state_1, num_steps - 1, remat)
    curve = stack(first(loss_0), first(along(theta, state_1, episode)), losses)
  if differentiate == "final":
    last = measure(theta, final_state, episode)
    curve = jax.tree.map(lambda c, l: jnp.concatenate([c[:-1], l[None]]), curve, last)
  return final_state, curve


def _scan_steps(body, state, n: int, remat: bool):
  """``n`` steps of ``body`` in a scan: ``(final state, stacked measures)``; with ``remat``
  (and ``n >= 4``) in checkpointed segments of ``ceil(sqrt(n))`` steps."""
  if not (remat and n >= 4):
    return jax.lax.scan(body, state, None, length=n)
  seg = math.isqrt(n - 1) + 1  # ceil(sqrt(n))
  segment = jax.checkpoint(lambda s, _: jax.lax.scan(body, s, None, length=seg))
  state_n, losses_SK = jax.lax.scan(segment, state, None, length=n // seg)
  losses = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), losses_SK)
  final_state, tail = jax.lax.scan(body, state_n, None, length=n % seg)
  return final_state, jax.tree.map(lambda *a: jnp.concatenate(a), losses, tail)
