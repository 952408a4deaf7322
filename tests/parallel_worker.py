"""Run by tests/test_parallel.py in a fresh process with 8 simulated CPU devices (or as one of
two jax.distributed processes), because the device count is fixed when JAX starts.

  python -m tests.parallel_worker equivalence OUT.npz
  python -m tests.parallel_worker resume WORKDIR_ROOT OUT.npz
  python -m tests.parallel_worker train DATA WORKDIR OUT.npz STEPS [WORKDIR OUT.npz STEPS ...]
                                                             (also under jax.distributed)
"""

import sys

import jax
import ml_collections
import numpy as np

from metalearn import config as config_lib
from metalearn import experiment, parallel, train
from metalearn.datasets import ClassImages
from metalearn.tasks import FewShotClassification

# (learner, estimator, extra config): every learner kind and every estimator (and remat) at
# least once, each in one case rather than in every combination (each case compiles twice).
CASES = {
    "maml-backprop": ("maml", "backprop", {}),
    "fomaml-backprop": ("fomaml", "backprop", {}),
    "metasgd-backprop-remat": ("metasgd", "backprop", {"estimator.remat": True}),
    "anil-truncated": ("anil", "truncated_backprop", {"estimator.truncation_length": 1,
                                                      "learner.num_inner_steps": 2}),
    "reptile-reptile": ("reptile", "reptile", {"learner.num_inner_steps": 2}),
    # Batch norm makes the gradient of the conv biases zero up to rounding; Adam's first
    # step, g / (|g| + eps), turns that rounding into full-size steps of either sign, so this
    # case compares the sharded computation under SGD (linear in the gradient).
    "protonet-backprop": ("protonet", "backprop", {"optimizer.name": "sgd"}),
}


def tiny_config(learner: str, estimator: str, extra: dict, data: int):
  few_shot = learner == "protonet"
  c = ml_collections.ConfigDict()
  c.learner = dict(name=learner)
  c.estimator = dict(name=estimator)
  if few_shot:
    c.task = dict(name="few_shot", num_ways=3, num_support=1, num_query=2, image_size=8)
    c.model = dict(name="conv4", filters=4, num_layers=1)
    c.eval = dict(num_inner_steps=0, report_steps=(0,), baselines=())
  else:
    c.task = dict(name="sinusoid")
    c.model = dict(name="mlp", hidden=(16, 16))
  c.meta_batch_size = 8
  c.mesh = dict(data=data)
  for key, value in extra.items():
    group, leaf = key.split(".")
    if group not in c:
      c[group] = {}
    c[group][leaf] = value
  return config_lib.validate(c)


def random_classes() -> ClassImages:
  images = np.random.default_rng(0).integers(0, 256, (6, 4, 8, 8, 1), dtype=np.uint8)
  return ClassImages(images, np.full(6, 4), tuple(f"c{i}" for i in range(6)))


def _family(config):
  if config.task.name != "few_shot":
    return None
  t = config.task
  return FewShotClassification.from_classes(random_classes(), t.num_ways, t.num_support,
                                            t.num_query)


def chunk_result(config, steps: int = 5):
  exp = experiment.build(config, family=_family(config))
  state = parallel.replicate(parallel.to_host(train.init_state(exp, config.seed)), exp.mesh)
  family = parallel.replicate(exp.family, exp.mesh)
  state, metrics = train.make_chunk_fn(exp, config.seed)(state, family, steps)
  return parallel.to_host(state.theta), parallel.to_host(metrics)


def equivalence(out):
  arrays = {}
  for name, (learner, estimator, extra) in CASES.items():
    for data in (1, 8):
      theta, metrics = chunk_result(tiny_config(learner, estimator, extra, data))
      for i, leaf in enumerate(jax.tree.leaves(theta)):
        arrays[f"{name}/{data}/theta{i}"] = leaf
      for k in ("meta_loss", "grad_norm", "curve"):
        arrays[f"{name}/{data}/{k}"] = metrics[k]
  np.savez(out, **arrays)


def _train(config, workdir, num_steps):
  config = config.copy_and_resolve_references()
  config.update(num_steps=num_steps, steps_per_call=5, log_every=5, checkpoint_every=5)
  config.eval.at_end = False
  return train.train(config, workdir)


def resume(root, out):
  """8 -> 1 -> 8 devices across resumes vs. one uninterrupted run on 1 device."""
  base = tiny_config("maml", "backprop", {}, 1)
  straight = _train(base, f"{root}/straight", 15)
  _train(tiny_config("maml", "backprop", {}, 8), f"{root}/switched", 5)
  _train(base, f"{root}/switched", 10)
  switched = _train(tiny_config("maml", "backprop", {}, 8), f"{root}/switched", 15)
  np.savez(out, **{f"straight{i}": x for i, x in
                   enumerate(jax.tree.leaves(parallel.to_host(straight.theta)))},
           **{f"switched{i}": x for i, x in
              enumerate(jax.tree.leaves(parallel.to_host(switched.theta)))})


def train_once(data, workdir, out, steps="10", *more):
  """Trains into ``workdir`` up to ``steps``; ``more``: further WORKDIR OUT STEPS triples,
  trained one after the other in this process."""
  parallel.initialize()
  for workdir, out, steps in ((workdir, out, steps), *zip(more[::3], more[1::3], more[2::3])):
    state = _train(tiny_config("maml", "backprop", {}, int(data)), workdir, int(steps))
    if jax.process_index() == 0:
      np.savez(out, **{f"theta{i}": x for i, x in
                       enumerate(jax.tree.leaves(parallel.to_host(state.theta)))},
               devices=jax.device_count(), processes=jax.process_count())


if __name__ == "__main__":
  command, *args = sys.argv[1:]
  {"equivalence": equivalence, "resume": resume, "train": train_once}[command](*args)
