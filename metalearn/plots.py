"""PNG plots of evaluation results (matplotlib, no display needed)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.unroll import unroll


def pyplot():
  """matplotlib's pyplot on the Agg backend, imported when a plot is drawn (importing it costs
  about half a second of every binary's start otherwise)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def metric_vs_steps(results: dict, path: pathlib.Path) -> pathlib.Path:
  """The query metric against inner steps, one line with a 95% band per method."""
  plt = pyplot()
  metric = results.get("metric", "mse")
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, m in results["methods"].items():
    mean, ci = jnp.asarray(m[metric]), jnp.asarray(m["ci95"])
    steps = range(len(mean))
    ax.plot(steps, mean, marker="o", ms=3, label=name)
    ax.fill_between(steps, mean - ci, mean + ci, alpha=0.2)
  ax.set(xlabel="inner steps", ylabel=f"query {metric}",
         yscale="log" if metric == "mse" else "linear",
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
  plt = pyplot()
  lo, hi = family.plot_range
  grid = jnp.linspace(lo, hi, 200)[:, None]

  def along(episode):
    return unroll(learner, theta, learner.init_state(theta, episode), episode, num_steps,
                  measure=lambda th, s, _: learner.predict(th, s, grid))[1]

  preds = jax.jit(jax.vmap(along))(episodes)
  n = preds.shape[0]
  fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1.6, 3.0), squeeze=False, sharey=True)
  for i, ax in enumerate(axes[0]):
    info = jax.tree.map(lambda a: a[i], episodes.info)
    ax.plot(grid[:, 0], family.target(info, grid)[:, 0], "k-", lw=1.5, label="true function")
    for t, style in ((0, ":"), (1, "--"), (num_steps, "-")):
      ax.plot(grid[:, 0], preds[i, t, :, 0], style,
              label=f"prediction after {t} step{'s' * (t != 1)}")
    ax.plot(episodes.support_x[i, :, 0], episodes.support_y[i, :, 0], "k^", ms=5,
            label=f"support ({episodes.support_x.shape[1]} points)")
    ax.set(title=f"task {i + 1}", xlabel="x")
  axes[0][0].set_ylabel("y")
  # one legend for every panel, beside the last
  axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
  fig.suptitle("held-out tasks: the learner's predictions as it adapts", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def episode_grid(learner, theta, episodes, num_steps: int, path: pathlib.Path,
                 max_query: int = 10) -> pathlib.Path:
  """Per episode: its support images (with labels), up to ``max_query`` query images with the
  label predicted after ``num_steps`` inner steps (green if right, red if wrong), and the
  confusion matrix over all its query images."""
  plt = pyplot()

  def final_logits(episode):
    state, _ = unroll(learner, theta, learner.init_state(theta, episode), episode, num_steps)
    return learner.predict(theta, state, episode.query_x)

  preds = np.asarray(jax.jit(jax.vmap(final_logits))(episodes).argmax(-1))
  support_x, support_y = np.asarray(episodes.support_x), np.asarray(episodes.support_y)
  query_x, query_y = np.asarray(episodes.query_x), np.asarray(episodes.query_y)
  n_eps, n_support = support_y.shape
  n_query = min(max_query, query_y.shape[1])
  ways = int(support_y.max()) + 1
  cols = n_support + n_query + 2
  fig = plt.figure(figsize=(0.75 * cols, 0.95 * n_eps + 0.3))
  grid = fig.add_gridspec(n_eps, cols)
  # Query images are spread over the classes (every len/n_query-th) rather than the first few.
  shown = np.linspace(0, query_y.shape[1] - 1, n_query).astype(int)
  for e in range(n_eps):
    for j in range(n_support + n_query):
      ax = fig.add_subplot(grid[e, j])
      if j < n_support:
        img, title, color = support_x[e, j], f"y={support_y[e, j]}", "black"
      else:
        q = shown[j - n_support]
        img, right = query_x[e, q], preds[e, q] == query_y[e, q]
        title, color = f"{preds[e, q]}/{query_y[e, q]}", "green" if right else "red"
      ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r")
      ax.set_title(title, fontsize=6, color=color, pad=1)
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_edgecolor(color)
    ax = fig.add_subplot(grid[e, -2:])
    confusion = np.zeros((ways, ways), int)
    np.add.at(confusion, (query_y[e], preds[e]), 1)
    ax.imshow(confusion, cmap="Blues")
    ax.set_title(f"acc {np.mean(preds[e] == query_y[e]):.2f}", fontsize=6, pad=1)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle("support (y=label) | query (predicted/true) | confusion (true rows)", fontsize=7)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
