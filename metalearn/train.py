"""The meta-trainer: one jitted outer step, scanned in chunks; checkpoints, metrics, resume.

Follow one run top to bottom in :func:`train`:

1. validate the config and build the experiment (:mod:`metalearn.experiment`);
2. restore the newest good checkpoint from ``workdir``, or initialise;
3. run chunks of outer steps, each one compiled ``lax.scan`` (the key of step ``s`` is
   ``fold_in(key, s)``, so results do not depend on where a run was interrupted);
4. while the next chunk runs, log the previous one and hand its state to the checkpointer.

Non-finite meta-losses or meta-gradients skip the update (counted in ``nonfinite_total``);
``max_consecutive_nonfinite`` in a row stop the run with an error naming the fix.

With a teacher (``curriculum.name``, :mod:`metalearn.curriculum`) each outer step's tasks
come from the task the teacher proposes (``family.at_task``), and the teacher observes the
step's negated meta-loss on it; its state is part of :class:`TrainState`, so it is
checkpointed and a resumed run continues the same curriculum. ``monitor.num_tasks`` > 0
measures the learner on fixed tasks of the full family (after any curriculum) at every log:
what a curriculum is for, whatever tasks it trains on.
"""

import json
import pathlib
import time
from typing import NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from metalearn import config as config_lib
from metalearn import experiment as experiment_lib
from metalearn import parallel
from metalearn.checkpoint import Checkpointer
from metalearn.metrics_writer import MetricsWriter
from metalearn.tasks import sample_batch
from metalearn.unroll import unroll


class TrainState(NamedTuple):
  """Everything that changes during meta-training (the PRNG key is derived from the seed)."""
  step: jax.Array
  theta: object
  opt_state: object
  estimator_state: object
  nonfinite_total: jax.Array
  nonfinite_streak: jax.Array
  teacher: object = ()  # the teacher's state; () without one


_keys = experiment_lib.run_keys


def _teacher_key(seed: int):
  return jax.random.fold_in(jax.random.key(seed), 0x7eac4e5)  # apart from _keys' streams


def init_state(exp: experiment_lib.Experiment, seed: int) -> TrainState:
  """The state at step 0, computed by one compiled program (the family, e.g. a dataset, is its
  argument, not a constant of it)."""
  init_key, estimator_key, _ = _keys(seed)
  teacher_key = jax.random.fold_in(_teacher_key(seed), 0)

  def init(family) -> TrainState:
    theta = exp.learner.init(init_key)
    zero = jnp.zeros((), jnp.int32)
    teacher = () if exp.steering is None else exp.steering.teacher.init(teacher_key)
    return TrainState(zero, theta, exp.optimizer.init(theta),
                      exp.make_estimator(family).init(estimator_key, theta), zero, zero,
                      teacher)

  return jax.jit(init)(exp.family)


def state_template(exp: experiment_lib.Experiment, seed: int) -> TrainState:
  """The shapes and dtypes of :func:`init_state` without computing (or compiling) it: the
  structure a checkpoint is restored into when only its values are needed."""
  return jax.eval_shape(lambda: init_state(exp, seed))


def make_outer_step(exp: experiment_lib.Experiment, seed: int):
  """``(state, family) -> (state, metrics)``: one meta-gradient estimate and optimizer update
  on tasks of ``family`` (``exp.family``, passed as an argument so its data are not constants
  of the compiled program)."""
  train_key, teacher_key = _keys(seed)[2], jax.random.fold_in(_teacher_key(seed), 1)

  def outer_step(state: TrainState, family):
    key = jax.random.fold_in(train_key, state.step)
    family = family.at_step(state.step)  # a curriculum over outer steps (e.g. Garg et al.'s)
    if exp.steering is not None:  # a teacher picks this step's task
      task = exp.steering.teacher.propose(state.teacher,
                                          jax.random.fold_in(teacher_key, state.step))
      family = family.at_task(exp.steering.to_family_task(task))
    estimator = exp.make_estimator(family)
    grads, est_state, metrics = estimator.estimate(state.theta, state.estimator_state, key)
    updates, opt_state = exp.optimizer.update(grads, state.opt_state, state.theta)
    theta = optax.apply_updates(state.theta, updates)
    # One reduction per leaf serves the log and the check: the norm is finite exactly when
    # every gradient entry is (and its square does not overflow, past which Adam's second
    # moment would not be finite either).
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(metrics["meta_loss"]) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    teacher = state.teacher
    if exp.steering is not None:  # scores are higher-is-better; a skipped step is not seen
      teacher = keep(exp.steering.teacher.observe(teacher, task, -metrics["meta_loss"]), teacher)
      metrics = {**metrics, "teacher_task": jnp.asarray(  # in the family's task space
          exp.steering.to_family_task(task), jnp.float32).reshape(-1)}
    new_state = TrainState(
        state.step + 1, keep(theta, state.theta), keep(opt_state, state.opt_state),
        keep(est_state, state.estimator_state),
        state.nonfinite_total + (~finite).astype(jnp.int32),
        jnp.where(finite, 0, state.nonfinite_streak + 1), teacher)
    metrics = {**metrics, "grad_norm": grad_norm, "finite": finite}
    return new_state, metrics

  return outer_step


def make_chunk_fn(exp: experiment_lib.Experiment, seed: int):
  """A jitted ``(state, family, length) -> (state, stacked metrics)`` running ``length``
  outer steps (call it with ``exp.family``) on ``exp.mesh``: state, family and metrics are
  replicated; the tasks inside are split over the mesh (:mod:`metalearn.parallel`)."""
  outer_step = make_outer_step(exp, seed)

  def chunk(state, family, length):
    return jax.lax.scan(lambda s, _: outer_step(s, family), state, None, length=length)

  rep = parallel.replicated(exp.mesh)
  return jax.jit(chunk, static_argnums=2, in_shardings=(rep, rep), out_shardings=(rep, rep))


def _chunk_end(config, step: int) -> int:
  """Where the chunk starting at ``step`` ends: the next multiple of ``steps_per_call`` (which
  ``log_every`` and ``checkpoint_every`` are multiples of), or ``num_steps``. Chunk lengths are
  static, so a run compiles at most two chunk programs."""
  return min(config.num_steps, (step // config.steps_per_call + 1) * config.steps_per_call)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Writes ``config.json``, or checks that a resumed run uses a compatible config."""
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  current = json.loads(config.to_json())
  if path.exists():
    conflicts = config_lib.resume_conflicts(json.loads(path.read_text()), current)
    if conflicts:
      raise config_lib.ConfigError(
          f"workdir {workdir} holds a run with a different config, so it cannot be resumed:\n  "
          + "\n  ".join(conflicts) + "\nUse a new --workdir, or the workdir's config "
          f"({path}).")
  if jax.process_index() == 0:
    path.write_text(json.dumps(current, indent=2, sort_keys=True))


def _summarise(chunks: list[dict]) -> dict[str, float]:
  """Means over the finite steps of the logging interval; the curve as loss_step_<t>."""
  cat = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  ok = cat["finite"]
  mean = lambda x: np.mean(x[ok], axis=0) if ok.any() else np.full(x.shape[1:], np.nan)
  out = {"meta_loss": float(mean(cat["meta_loss"])), "grad_norm": float(mean(cat["grad_norm"])),
         "nonfinite_steps": int(np.sum(~ok))}
  if "nonfinite_trajectories" in cat:  # ES / PES: excluded and reset trajectories (pairs)
    out["nonfinite_trajectories"] = int(np.sum(cat["nonfinite_trajectories"]))
  for t, v in enumerate(mean(cat["curve"])):
    out[f"loss_step_{t}"] = float(v)
  if "teacher_task" in cat:  # where the teacher sent the learner: mean task per axis
    for i, v in enumerate(np.mean(cat["teacher_task"], axis=0)):
      out[f"teacher_task_{i}"] = float(v)
  return out


def make_monitor_fn(config: ml_collections.ConfigDict, exp: experiment_lib.Experiment):
  """A jitted ``(theta, family) -> {monitor_final, monitor_mean}``: the mean final and mean
  (steps 1..T) query loss on ``monitor.num_tasks`` fixed tasks (key ``monitor.seed``) of the
  full family: at the end of its curriculum, at no teacher's task."""
  steps = exp.learner.num_inner_steps
  key, n = jax.random.key(config.monitor.seed), config.monitor.num_tasks

  def monitor(theta, family):
    family = family.at_step(config.num_steps)
    episodes = sample_batch(family, key, n)
    curves_NT = jax.vmap(lambda ep: unroll(exp.learner, theta, exp.learner.init_state(theta, ep),
                                           ep, steps)[1])(episodes)
    return {"monitor_final": jnp.mean(curves_NT[:, -1]),
            "monitor_mean": jnp.mean(curves_NT[:, 1:])}

  rep = parallel.replicated(exp.mesh)
  return jax.jit(monitor, in_shardings=(rep, rep), out_shardings=rep)


def _longest_streak(finite: np.ndarray, streak: int) -> tuple[int, int]:
  """(longest run of non-finite steps, run at the end), continuing a run of ``streak``."""
  longest = streak
  for f in finite:
    streak = 0 if f else streak + 1
    longest = max(longest, streak)
  return longest, streak


def _eta(seconds: float) -> str:
  minutes, secs = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Meta-trains as ``config`` says into ``workdir``, resuming from its newest checkpoint."""
  config = config_lib.validate(config)
  workdir = pathlib.Path(workdir)
  prepare_workdir(config, workdir)
  exp = experiment_lib.build(config)
  state = init_state(exp, config.seed)
  checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
  restored = checkpointer.restore_latest(state)
  if restored is not None:
    state, _ = restored
  # Every process holds the same host values; as global arrays replicated over the mesh.
  state = parallel.replicate(parallel.to_host(state), exp.mesh)
  exp = exp._replace(family=parallel.replicate(exp.family, exp.mesh))
  start = int(parallel.to_host(state.step))
  logging.info("%s meta-training %s on %s from step %d to %d in %s (%d device(s), %d "
               "process(es))", "Resuming" if start else "Starting", config.learner.name,
               config.task.name, start, config.num_steps, workdir, exp.mesh.size,
               jax.process_count())
  writer = MetricsWriter(workdir, resume_step=start)
  try:
    state = _loop(config, exp, state, checkpointer, writer)
    checkpointer.wait()
  finally:  # also on an error: finish (and report) the last save, flush the metrics
    checkpointer.close()
    writer.close()
  return state


def _loop(config, exp, state, checkpointer, writer) -> TrainState:
  """Dispatches chunk i+1, then logs and checkpoints chunk i while it runs."""
  chunk_fn = make_chunk_fn(exp, config.seed)
  monitor_fn = make_monitor_fn(config, exp) if config.monitor.num_tasks else None
  start = step = int(parallel.to_host(state.step))
  streak = int(parallel.to_host(state.nonfinite_streak))
  pending, since_log = None, []
  log_time, log_step = time.perf_counter(), start
  while step < config.num_steps or pending is not None:
    dispatched = None
    if step < config.num_steps:
      end = _chunk_end(config, step)
      t0 = time.perf_counter()
      new_state, metrics = chunk_fn(state, exp.family, end - step)
      if step == start:
        logging.info("Compiled and dispatched the first chunk in %.1fs", time.perf_counter() - t0)
        log_time = time.perf_counter()  # rates (and the ETA) leave compilation out
      dispatched = (end, new_state, metrics)
      step, state = end, new_state
    if pending is not None:
      done_step, done_state, done_metrics = pending
      since_log.append(parallel.to_host(done_metrics))
      longest, streak = _longest_streak(since_log[-1]["finite"], streak)
      if longest >= config.max_consecutive_nonfinite:
        raise FloatingPointError(
            f"meta-training produced a non-finite meta-loss or meta-gradient for {longest} "
            f"consecutive outer steps (before step {done_step}); updates were skipped and the "
            "last checkpoint is intact. Lower optimizer.learning_rate or learner.inner_lr, or "
            "set optimizer.clip_grad_norm.")
      if done_step % config.log_every == 0 or done_step == config.num_steps:
        now = time.perf_counter()
        rate = (done_step - log_step) / max(now - log_time, 1e-9)
        row = {**_summarise(since_log),
               "nonfinite_total": int(parallel.to_host(done_state.nonfinite_total)),
               "steps_per_sec": rate}
        if monitor_fn is not None:
          row.update({k: float(v) for k, v in parallel.to_host(
              monitor_fn(done_state.theta, exp.family)).items()})
        writer.write(done_step, row)
        logging.info("step %d/%d | meta_loss %.4f | %.3g steps/s | ETA %s", done_step,
                     config.num_steps, row["meta_loss"], rate,
                     _eta((config.num_steps - done_step) / max(rate, 1e-9)))
        if row.get("nonfinite_trajectories"):
          logging.warning("%d trajectory pair(s) since the last log had a non-finite loss: "
                          "excluded from their estimates and reset to fresh tasks.",
                          row["nonfinite_trajectories"])
        if row["nonfinite_steps"]:
          logging.warning("%d outer step(s) since the last log had a non-finite meta-loss or "
                          "gradient and were skipped (%d in total).", row["nonfinite_steps"],
                          row["nonfinite_total"])
        since_log, log_time, log_step = [], now, done_step
      if done_step % config.checkpoint_every == 0 or done_step == config.num_steps:
        checkpointer.save(done_step, done_state)
    pending = dispatched
  return state
