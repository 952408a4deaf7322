"""PNG plots of evaluation results (matplotlib, no display needed)."""

import pathlib

import jax
import jax.numpy as jnp
import matplotlib

from metalearn.unroll import unroll

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def mse_vs_steps(results: dict, path: pathlib.Path) -> pathlib.Path:
  """Query MSE against inner steps, one line with a 95% band per method."""
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, m in results["methods"].items():
    mean, ci = jnp.asarray(m["mse"]), jnp.asarray(m["ci95"])
    steps = range(len(mean))
    ax.plot(steps, mean, marker="o", ms=3, label=name)
    ax.fill_between(steps, mean - ci, mean + ci, alpha=0.2)
  ax.set(xlabel="inner steps", ylabel="query MSE", yscale="log",
         title=f"{results['learner']}, K={results['num_support']}, "
               f"{results['num_tasks']} tasks")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def predictions(learner, theta, family, episodes, num_steps: int,
                path: pathlib.Path) -> pathlib.Path:
  """True function, support points and the learner's prediction after 0, 1 and T steps."""
  lo, hi = family.x_range
  grid = jnp.linspace(lo, hi, 200)[:, None]

  def along(episode):
    return unroll(learner, theta, learner.init_state(theta, episode), episode, num_steps,
                  measure=lambda th, s, _: learner.predict(th, s, grid))[1]

  preds = jax.jit(jax.vmap(along))(episodes)
  n = preds.shape[0]
  fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), squeeze=False)
  for i, ax in enumerate(axes[0]):
    info = jax.tree.map(lambda a: a[i], episodes.info)
    ax.plot(grid[:, 0], family.target(info, grid)[:, 0], "k-", lw=1.5, label="true")
    for t, style in ((0, ":"), (1, "--"), (num_steps, "-")):
      ax.plot(grid[:, 0], preds[i, t, :, 0], style, label=f"after {t} step{'s' * (t != 1)}")
    ax.plot(episodes.support_x[i, :, 0], episodes.support_y[i, :, 0], "k^", ms=5,
            label="support")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
