r"""Meta-training throughput: outer steps/s of the real training step, compile time, GFLOP/s.

  python experiments/benchmark.py                      # MAML sinusoid, paper settings
  python experiments/benchmark.py --learners=maml,fomaml,metasgd,anil,reptile --json=bench.json
  METALEARN_OMNIGLOT_DIR=../shared/data/omniglot python experiments/benchmark.py \
    --suites=omniglot                                  # MAML 5-way 1-shot, Conv-4, batch 32

The ``omniglot`` suite times MAML 5-way 1-shot on Conv-4 at meta-batch 32 (the paper's
outer step) on Omniglot-mini's meta-training classes, for each ``--conv_impls``: episodes/s,
images/s (support + query), and the episode sampler's share of a step (a jitted scan of
``sample_batch`` alone, same number of steps, over the training step's time; goal < 5%).

Each row times ``train.make_chunk_fn`` (what ``meta_train.py`` runs): ``--steps_per_call``
outer steps per compiled call, median over ``--repeats`` calls. ``1 step/call`` is the same
outer step jitted alone and called from Python once per step (dispatch included), for scale.
GFLOP/s uses XLA's cost analysis of the compiled chunk; the matmul peak is measured here with a
2048^3 float32 product.
"""

import json
import os
import pathlib
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from metalearn import config as config_lib
from metalearn import evaluation, experiment, train
from metalearn.tasks import sample_batch

_CONFIG = pathlib.Path(__file__).parent / "configs" / "maml_sinusoid.py"
_OMNIGLOT = pathlib.Path(__file__).parent / "configs" / "omniglot.py"

_SUITES = flags.DEFINE_list("suites", ["sinusoid"], "Benchmarks to run: sinusoid, omniglot.")
_CONV_IMPLS = flags.DEFINE_list("conv_impls", ["im2col", "xla"],
                                "Convolution implementations for the omniglot suite.")
_OMNIGLOT_STEPS = flags.DEFINE_integer("omniglot_steps", 10,
                                       "Outer steps per timed call in the omniglot suite.")
_OMNIGLOT_ARGS = flags.DEFINE_string("omniglot_config", "maml,ways=5,shots=1,mini",
                                     "Config argument of experiments/configs/omniglot.py.")
_OMNIGLOT_BATCH = flags.DEFINE_integer("omniglot_meta_batch", 32,
                                       "Episodes per outer step in the omniglot suite (the "
                                       "MAML paper's 5-way meta-batch: 32).")

_LEARNERS = flags.DEFINE_list("learners", ["maml"], "Learners to benchmark.")
_K = flags.DEFINE_integer("k", 10, "Support points per task.")
_STEPS = flags.DEFINE_integer("steps_per_call", 1000, "Outer steps per compiled call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per row (median reported).")
_PIN = flags.DEFINE_bool("pin_one_core", False,
                         "Run on one CPU core (like `taskset -c 0`): XLA's CPU thread pool "
                         "then has one thread, which is faster for tiny per-task matmuls.")
_JSON = flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")


def _median_seconds(fn, repeats):
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def matmul_peak_gflops(n=2048, repeats=5) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  return 2 * n ** 3 / _median_seconds(lambda: f(a), repeats) / 1e9


def bench_learner(name: str, k: int, steps: int, repeats: int) -> dict:
  config = config_lib.load_config_module(str(_CONFIG)).get_config(f"{name},k={k}")
  exp = experiment.build(config)
  state = train.init_state(exp, config.seed)
  chunk = train.make_chunk_fn(exp, config.seed)
  t0 = time.perf_counter()
  compiled = chunk.lower(state, exp.family, steps).compile()
  compile_s = time.perf_counter() - t0
  chunk_s = _median_seconds(lambda: compiled(state, exp.family), repeats)
  single = jax.jit(train.make_outer_step(exp, config.seed))
  cost = single.lower(state, exp.family).compile().cost_analysis()  # a loop body counts once
  cost = cost[0] if isinstance(cost, list) else cost
  flops_per_step = float(cost.get("flops", float("nan")))

  def python_loop():
    s = state
    for _ in range(200):
      s, _ = single(s, exp.family)
    return s
  loop_s = _median_seconds(python_loop, repeats) / 200
  return {"learner": name, "k": k, "meta_batch": config.meta_batch_size,
          "inner_steps": config.learner.num_inner_steps, "steps_per_call": steps,
          "outer_steps_per_s": steps / chunk_s, "one_step_per_call_per_s": 1 / loop_s,
          "compile_s": compile_s, "mflop_per_step": flops_per_step / 1e6,
          "gflops": flops_per_step * steps / chunk_s / 1e9}


def bench_omniglot(conv_impl: str, steps: int, repeats: int, meta_batch: int) -> dict:
  """Episodes/s of the few-shot outer step and the sampler's share of it."""
  config = config_lib.load_config_module(str(_OMNIGLOT)).get_config(_OMNIGLOT_ARGS.value)
  config.model.conv_impl = conv_impl
  config.meta_batch_size = meta_batch
  exp = experiment.build(config_lib.validate(config))
  state = train.init_state(exp, config.seed)
  t0 = time.perf_counter()
  compiled = train.make_chunk_fn(exp, config.seed).lower(state, exp.family, steps).compile()
  compile_s = time.perf_counter() - t0
  step_s = _median_seconds(lambda: compiled(state, exp.family), repeats) / steps

  def sample_only(family, key):
    def body(total, i):
      episodes = sample_batch(family, jax.random.fold_in(key, i), meta_batch)
      return total + episodes.support_x.sum() + episodes.query_x.sum(), None
    return jax.lax.scan(body, jnp.zeros(()), jnp.arange(steps))[0]
  sampler = jax.jit(sample_only).lower(exp.family, jax.random.key(0)).compile()
  sample_s = _median_seconds(lambda: sampler(exp.family, jax.random.key(0)), repeats) / steps
  t = config.task
  images = meta_batch * t.num_ways * (t.num_support + t.num_query)
  return {"suite": "omniglot", "conv_impl": conv_impl, "config": _OMNIGLOT_ARGS.value,
          "meta_batch": meta_batch, "inner_steps": config.learner.num_inner_steps,
          "step_s": step_s, "episodes_per_s": meta_batch / step_s, "images_per_s": images / step_s,
          "sample_s": sample_s, "sampler_share": sample_s / step_s, "compile_s": compile_s}


def main(argv):
  del argv
  if _PIN.value:  # before the first JAX operation creates the CPU client and its thread pool
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  unknown = set(_SUITES.value) - {"sinusoid", "omniglot"}
  if unknown:
    raise app.UsageError(f"unknown --suites {sorted(unknown)}; choose sinusoid, omniglot")
  peak = matmul_peak_gflops()
  rows = ([bench_learner(n, _K.value, _STEPS.value, _REPEATS.value) for n in _LEARNERS.value]
          if "sinusoid" in _SUITES.value else [])
  few_shot = ([bench_omniglot(c, _OMNIGLOT_STEPS.value, _REPEATS.value, _OMNIGLOT_BATCH.value)
               for c in _CONV_IMPLS.value] if "omniglot" in _SUITES.value else [])
  print(f"\n{evaluation.hardware()}; matmul peak {peak:.0f} GFLOP/s\n")
  if few_shot:
    print("| few-shot config (Conv-4) | conv | meta-batch | episodes/s | images/s | "
          "s/step | sampler s/step (share) | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in few_shot:
      print(f"| {r['config']} | {r['conv_impl']} | {r['meta_batch']} | "
            f"{r['episodes_per_s']:.1f} | {r['images_per_s']:.0f} | {r['step_s']:.3f} | "
            f"{r['sample_s'] * 1e3:.2f} ms ({100 * r['sampler_share']:.2f}%) | "
            f"{r['compile_s']:.1f} |")
    print()
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump({"peak_gflops": peak, "hardware": evaluation.hardware(),
                 "pinned_one_core": _PIN.value, "rows": rows, "few_shot": few_shot}, f, indent=2)
  if not rows:
    return
  print("| learner | K | meta-batch | inner steps | outer steps/s | 1 step/call, steps/s | "
        "compile s | MFLOP/step | GFLOP/s (% peak) |")
  print("|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['learner']} | {r['k']} | {r['meta_batch']} | {r['inner_steps']} | "
          f"{r['outer_steps_per_s']:.0f} | {r['one_step_per_call_per_s']:.0f} | "
          f"{r['compile_s']:.2f} | {r['mflop_per_step']:.1f} | "
          f"{r['gflops']:.1f} ({100 * r['gflops'] / peak:.1f}%) |")


if __name__ == "__main__":
  app.run(main)
