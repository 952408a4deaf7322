r"""Benchmark suites: throughput, compile time, FLOP/s against a measured peak, memory
(:mod:`metalearn.benchmark`; docs/benchmark.md).

  python experiments/benchmark.py                        # every learner kind + memory scaling
  python experiments/benchmark.py --json=new.json --compare=old.json   # ratios new / old
  METALEARN_OMNIGLOT_DIR=../shared/data/omniglot python experiments/benchmark.py \
    --suites=omniglot                                    # MAML 5-way 1-shot, Conv-4, batch 32
"""

import json
import os
import pathlib

from absl import app
from absl import logging
from absl import flags
import jax

from metalearn import benchmark
from metalearn import evaluators
from metalearn import parallel

_CONFIGS = pathlib.Path(__file__).parent / "configs"

_SUITES = flags.DEFINE_list("suites", ["sinusoid", "few_shot", "memory"],
                            f"Benchmarks to run, from {benchmark.SUITES}.")
_CONV_IMPLS = flags.DEFINE_list("conv_impls", ["im2col", "xla"],
                                "Convolution implementations for the omniglot suite.")
_OMNIGLOT_STEPS = flags.DEFINE_integer("omniglot_steps", 10,
                                       "Outer steps per timed call in the omniglot suite.")
_OMNIGLOT_ARGS = flags.DEFINE_string("omniglot_config", "maml,ways=5,shots=1,mini",
                                     "Config argument of experiments/configs/omniglot.py.")
_OMNIGLOT_BATCH = flags.DEFINE_integer("omniglot_meta_batch", 32,
                                       "Episodes per outer step in the omniglot suite (the "
                                       "MAML paper's 5-way meta-batch: 32).")
_LOPT_STEPS = flags.DEFINE_integer("lopt_steps", 10, "Outer steps per timed call (lopt suite).")
_LOPTS = flags.DEFINE_list("lopts", ["mlp_lopt", "small_lopt"], "Learned optimizers (lopt suite).")
_LOPT_DATA = flags.DEFINE_list("lopt_data", ["images", "gaussian_mixture"],
                               "Data of the lopt suite's task: images (an in-memory pool) and/or "
                               "gaussian_mixture (drawn fresh each step).")
_LOPT_SIZE = flags.DEFINE_string("lopt_size", "small", "Size argument of "
                                 "configs/learned_optimizer.py for the lopt suite (tests: tiny).")
_ICL_STEPS = flags.DEFINE_integer("icl_steps", 100, "Outer steps per timed call (icl suite).")
_ICL_WIDTHS = flags.DEFINE_list("icl_widths", ["64:2:2", "256:4:4"],
                                "Transformer width:layers:heads of the icl suite.")
_LEARNERS = flags.DEFINE_list("learners", ["maml", "fomaml", "metasgd", "anil", "reptile"],
                              "Gradient-based learners of the sinusoid suite.")
_MEMORY_T = flags.DEFINE_list("memory_steps", ["10", "30", "100", "300", "1000"],
                              "Unroll lengths of the memory suite.")
_OUT_DIR = flags.DEFINE_string("out_dir", "/tmp/metalearn_benchmark",
                               "Where the memory suite writes memory_scaling.png.")
_COMPARE = flags.DEFINE_string("compare", None, "A previous --json to print ratios against.")
_K = flags.DEFINE_integer("k", 10, "Support points per task.")
_STEPS = flags.DEFINE_integer("steps_per_call", 1000, "Outer steps per compiled call.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per row (median reported).")
_PIN = flags.DEFINE_bool("pin_one_core", False,
                         "Run on one CPU core (like `taskset -c 0`): XLA's CPU thread pool "
                         "then has one thread, which is faster for tiny per-task matmuls.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Split the CPU into this many JAX devices (-1: one per core; 0: JAX's "
    "default). The lopt suite then also times its runs split over the most of them that "
    "divide its meta-batch, beside one device; the other suites run on one device.")
_LM_SIZES = flags.DEFINE_list("lm_sizes", ["small"], "Sizes of configs/lm/pretrain.py the lm "
                              "suite trains (tests: tiny).")
_LM_STEPS = flags.DEFINE_integer("lm_steps", 10, "Optimizer steps per timed call (lm suite).")
_LM_LENGTHS = flags.DEFINE_list("lm_lengths", ["128", "512", "2048"],
                                "Sequence lengths of the lm suite's memory rows.")
_TINKER = flags.DEFINE_string("tinker", "32:128:32:8:64",
                              "batch:seq_len:lora_rank:num_samples:max_tokens of the tinker "
                              "suite (its model: the first of --lm_sizes).")
_JSON = flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _PIN.value:  # before the first JAX operation creates the CPU client and its thread pool
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  parallel.use_cpu_devices(_CPU_DEVICES.value)
  unknown = set(_SUITES.value) - set(benchmark.SUITES)
  if unknown:
    raise app.UsageError(f"unknown --suites {sorted(unknown)}; choose from {benchmark.SUITES}")
  suites, repeats = _SUITES.value, _REPEATS.value
  peak = benchmark.matmul_peak_gflops()
  rows = ([benchmark.bench_learner(_CONFIGS, n, _K.value, _STEPS.value, repeats)
           for n in _LEARNERS.value] if "sinusoid" in suites else [])
  versus = []
  if "handwritten" in suites:
    for n in _LEARNERS.value:
      batch = benchmark.handwritten_meta_batch(_CONFIGS, n, _K.value)
      for d in sorted({1, jax.device_count()}):
        if batch % d:
          logging.warning("handwritten suite: %s's meta-batch of %d does not split over %d "
                          "devices; that row is not timed", n, batch, d)
          continue
        versus.append(benchmark.bench_handwritten(_CONFIGS, n, _K.value, _STEPS.value,
                                                  repeats, d))
  if "few_shot" in suites:
    rows.append(benchmark.bench_protonet(_CONFIGS, max(1, _STEPS.value // 10), repeats))
  memory = (benchmark.bench_memory(_CONFIGS, [int(t) for t in _MEMORY_T.value])
            if "memory" in suites else [])
  few_shot = ([benchmark.bench_omniglot(_CONFIGS, _OMNIGLOT_ARGS.value, c, _OMNIGLOT_STEPS.value,
                                        repeats, _OMNIGLOT_BATCH.value)
               for c in _CONV_IMPLS.value] if "omniglot" in suites else [])
  if "lopt" in suites:
    meshes = sorted({1, jax.device_count()})
    rows += [benchmark.bench_lopt(_CONFIGS, l, d, _LOPT_STEPS.value, repeats, _LOPT_SIZE.value, n)
             for l in _LOPTS.value for d in _LOPT_DATA.value for n in meshes]
  lopt_cost = (benchmark.bench_lopt_cost(repeats, _LOPT_SIZE.value)
               if "lopt" in suites else [])
  icl = []
  if "icl" in suites:
    for spec in _ICL_WIDTHS.value:
      w, l, h = (int(v) for v in spec.split(":"))
      for layout in ("interleaved", "packed"):
        icl.append(benchmark.bench_icl(_CONFIGS, w, l, h, layout, _ICL_STEPS.value, repeats))
  lm_rows, lm_memory = [], []
  if "lm" in suites:
    from metalearn.lm import benchmark as lm_benchmark  # pylint: disable=g-import-not-at-top
    lm_rows = [lm_benchmark.bench_train(_CONFIGS, size, _LM_STEPS.value, repeats, peak)
               for size in _LM_SIZES.value]
    lm_memory = lm_benchmark.bench_memory(_CONFIGS, _LM_SIZES.value[0],
                                          [int(s) for s in _LM_LENGTHS.value])
  tinker_rows = []
  if "tinker" in suites:
    from metalearn.tinker import benchmark as tinker_benchmark  # pylint: disable=g-import-not-at-top
    batch, seq_len, rank, samples, tokens = (int(v) for v in _TINKER.value.split(":"))
    tinker_rows = [tinker_benchmark.bench(_CONFIGS, _LM_SIZES.value[0], batch, seq_len, rank,
                                          samples, tokens, repeats, peak)]
  benchmark.print_tables(peak, rows, memory, few_shot, lopt_cost, icl, _OUT_DIR.value, versus)
  if "lm" in suites:
    lm_benchmark.print_tables(lm_rows, lm_memory)
  if "tinker" in suites:
    tinker_benchmark.print_table(tinker_rows)
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump({"peak_gflops": peak, "hardware": evaluators.hardware(),
                 "pinned_one_core": _PIN.value, "rows": rows, "few_shot": few_shot,
                 "memory": memory, "lopt_cost": lopt_cost, "icl": icl,
                 "handwritten": versus, "lm": lm_rows, "lm_memory": lm_memory,
                 "tinker": tinker_rows}, f, indent=2)
  if _COMPARE.value:
    benchmark.compare(rows + versus + memory + few_shot + lopt_cost + icl + lm_rows + lm_memory
                      + tinker_rows, _COMPARE.value)


if __name__ == "__main__":
  app.run(main)
