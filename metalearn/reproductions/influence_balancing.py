r"""PES on the influence-balancing problem (Vicol et al. 2021, section 5.1): table and plot
(``experiments/influence_balancing.py``, ``launch/reproduce/pes_influence_balancing.sh``).

Meta-trains the one parameter of :class:`metalearn.tasks.influence_balancing.InfluenceBalancing`
with plain SGD (``lr``) from ``theta_0 = 0.5`` for ``iterations`` steps, using PES and truncated
ES (``particles`` trajectories, i.e. ``particles / 2`` antithetic pairs, ``sigma``) and
truncated backprop, for each truncation length of the method. The system is never reset. Each
run is evaluated by unrolling ``eval_steps`` steps from ``s_0`` with its final ``theta``.
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn import estimators, evaluators, inmemory, objectives, plots
from metalearn.tasks.influence_balancing import THETA_STAR, InfluenceBalancing, NoTasks
from metalearn.unroll import unroll


# (name, estimator, truncation length)
METHODS = (("PES", "pes", 1), ("PES", "pes", 10), ("truncated ES", "truncated_es", 1),
           ("truncated backprop", "truncated_backprop", 1),
           ("truncated backprop", "truncated_backprop", 100))
_NEVER = 10**8  # inner steps before a reset: the problem is never reset


def make_estimator(kind: str, K: int, particles: int, sigma: float):
  learner, family, objective = InfluenceBalancing(), NoTasks(), objectives.final_loss
  horizon = _NEVER // K * K
  if kind == "truncated_backprop":
    return estimators.truncated_backprop(learner, family, objective, 1, horizon, K)
  return estimators.truncated_es(learner, family, objective, particles // 2, horizon, K, sigma,
                                 persistent=kind == "pes", stagger=False)


def evaluation_loss(theta: float, steps: int) -> tuple[float, float]:
  """(mean, final) loss of a ``steps``-step unroll from ``s_0`` at ``theta``."""
  learner = InfluenceBalancing()
  th = {"theta": jnp.asarray(theta, jnp.float32)}
  _, curve = unroll(learner, th, learner.init_state(th, None), None, steps)
  return float(jnp.mean(curve[1:])), float(curve[-1])


def run_method(kind, K, seeds, iterations, particles, sigma, lr):
  """``theta [seeds, iterations]`` and seconds per run."""
  est = make_estimator(kind, K, particles, sigma)
  theta_0 = InfluenceBalancing().init(None)
  trajs, seconds = [], []
  for seed in range(seeds):
    t0 = time.perf_counter()
    _, traj = inmemory.meta_train(est, optax.sgd(lr), theta_0, jax.random.key(seed), iterations,
                                  record=lambda th, m: th["theta"])
    trajs.append(np.asarray(traj))
    seconds.append(time.perf_counter() - t0)
  return np.stack(trajs), seconds


def summarise(name, K, trajs, seconds, tol, eval_steps, iterations) -> dict:
  err = np.abs(trajs - THETA_STAR)
  first = [int(np.argmax(e < tol)) + 1 if (e < tol).any() else None for e in err]
  mid = min(1500, iterations) - 1
  evals = [evaluation_loss(float(t[-1]), eval_steps) for t in trajs]
  return {"method": name, "K": K, "seeds": len(trajs),
          "theta_final_mean": float(trajs[:, -1].mean()),
          "theta_final_std": float(trajs[:, -1].std()),
          "seeds_converged_by_1500": int(np.sum(err[:, mid] < tol)),
          "first_converged_median": (float(np.median([f for f in first if f]))
                                     if any(first) else None),
          "eval_mean_loss": float(np.mean([e[0] for e in evals])),
          "eval_final_loss": float(np.mean([e[1] for e in evals])),
          "seconds_per_run": float(np.median(seconds))}


def write(rows, trajs, out: pathlib.Path, settings: dict) -> None:
  out.parent.mkdir(parents=True, exist_ok=True)
  lines = ["# PES influence balancing (Vicol et al. 2021, section 5.1)", "",
           f"theta* = -1/6 (steady state s*[0] = -6 theta = 1). Settings: {settings}.", "",
           "| method | K | final theta (mean ± std over seeds) | seeds with \\|theta + 1/6\\| < "
           f"{settings['tolerance']:g} at iteration 1500 | median first iteration converged | "
           f"{settings['eval_steps']}-step eval: mean loss | final loss | s/run |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    first = "never" if r["first_converged_median"] is None else f"{r['first_converged_median']:.0f}"
    lines.append(f"| {r['method']} | {r['K']} | {r['theta_final_mean']:.5f} ± "
                 f"{r['theta_final_std']:.1e} | {r['seeds_converged_by_1500']}/{r['seeds']} | "
                 f"{first} | {r['eval_mean_loss']:.4g} | {r['eval_final_loss']:.3g} | "
                 f"{r['seconds_per_run']:.1f} |")
  lines += ["", f"Hardware: {evaluators.hardware()}.",
            "Truncated backprop is deterministic here, so its seeds agree.", "",
            f"![theta over iterations]({out.name}.png)", ""]
  out.with_suffix(".md").write_text("\n".join(lines))
  keys = list(rows[0])
  csv = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]
  out.with_suffix(".csv").write_text("\n".join(csv) + "\n")
  out.with_suffix(".json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for r, t in zip(rows, trajs):
    it = np.arange(1, t.shape[1] + 1)
    line, = ax.plot(it, t.mean(0), label=f"{r['method']} K={r['K']}")
    ax.fill_between(it, t.min(0), t.max(0), color=line.get_color(), alpha=0.2)
  ax.axhline(THETA_STAR, color="k", ls="--", lw=1, label="theta* = -1/6")
  ax.set(xlabel="outer iteration", ylabel="theta", ylim=(-0.5, 3.5),
         title="Influence balancing: theta over meta-training (min-max band over seeds)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=120)
  plt.close(fig)


def run(out, seeds: int = 10, iterations: int = 3000, particles: int = 1000, sigma: float = 0.1,
        lr: float = 1e-4, eval_steps: int = 500, tolerance: float = 1e-3) -> str:
  """Runs every method of :data:`METHODS` on ``seeds`` seeds; writes ``OUT.md``, ``.csv``,
  ``.json`` and ``.png`` and returns the markdown."""
  settings = {"iterations": iterations, "particles": particles, "sigma": sigma, "lr": lr,
              "seeds": seeds, "eval_steps": eval_steps, "tolerance": tolerance, "theta_0": 0.5}
  rows, all_trajs = [], []
  for name, kind, K in METHODS:
    trajs, seconds = run_method(kind, K, seeds, iterations, particles, sigma, lr)
    rows.append(summarise(name, K, trajs, seconds, tolerance, eval_steps, iterations))
    all_trajs.append(trajs)
    print(f"{name} K={K}: final theta {rows[-1]['theta_final_mean']:.5f}, converged by 1500 in "
          f"{rows[-1]['seeds_converged_by_1500']}/{seeds} seeds", flush=True)
  out = pathlib.Path(out)
  write(rows, all_trajs, out, settings)
  return out.with_suffix(".md").read_text()
