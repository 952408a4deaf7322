"""The decoder LM's benchmark rows (``experiments/benchmark.py --suites=lm``): training tokens/s
and achieved FLOP/s as a share of the measured matmul peak, and the training step's memory
against sequence length with and without rematerialisation.

A training row times the pretraining binary's own compiled chunk (``steps`` optimizer steps
under ``lax.scan``, batches drawn on device) at a size of ``configs/lm/pretrain.py``. FLOPs are
the analytic count (:func:`metalearn.lm.config.flops_per_token`: 6 per matmul weight per token
plus attention's scores and mixing): XLA's cost analysis counts a loop body once, and the
layers run under ``lax.scan``, so it would count about one layer.
"""

import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from metalearn import config as config_lib
from metalearn.lm import config as lm_config
from metalearn.lm import model as model_lib
from metalearn.lm import pretrain
from metalearn.lm import train as train_lib


def size_config(configs: pathlib.Path, size: str):
  """``(run config, model config)`` of ``configs/lm/pretrain.py:size``."""
  module = config_lib.load_config_module(str(configs / "lm" / "pretrain.py"))
  config = pretrain.validate(module.get_config(size))
  return config, pretrain.model_config(config)


def bench_train(configs: pathlib.Path, size: str, steps: int, repeats: int,
                peak_gflops: float) -> dict:
  """Training throughput of the ``size`` base model on random tokens."""
  config, c = size_config(configs, size)
  optimizer = pretrain.make_optimizer(config)
  graphdef, state = train_lib.init(model_lib.create(c, config.seed), optimizer)
  step_fn = train_lib.make_step(graphdef, optimizer)
  b, s = config.batch_size, config.seq_len
  tokens = jax.random.randint(jax.random.key(1), (4 * b, s + 1), 0, c.vocab_size)

  def batch(state, tokens):
    idx = jax.random.randint(jax.random.fold_in(jax.random.key(2), state.step), (b,), 0,
                             tokens.shape[0])
    return {"tokens": tokens[idx], "weights": jnp.ones((b, s + 1), jnp.float32)}

  @functools.partial(jax.jit, donate_argnums=0)
  def chunk(state, tokens):
    return jax.lax.scan(lambda st, _: step_fn(st, batch(st, tokens)), state, None,
                        length=steps)

  t0 = time.perf_counter()
  compiled = chunk.lower(state, tokens).compile()
  compile_s = time.perf_counter() - t0
  state, _ = compiled(state, tokens)  # warm up
  times = []
  for _ in range(repeats):
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    state, _ = compiled(state, tokens)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t0)
  seconds = float(np.median(times)) / steps
  analytic = lm_config.flops_per_token(c, s) * b * s
  return {"suite": "lm", "size": size, "arch": c.arch, "params_m": c.num_params() / 1e6,
          "batch": b, "seq_len": s, "steps_per_call": steps, "compile_s": compile_s,
          "tokens_per_s": b * s / seconds, "step_ms": seconds * 1e3,
          "analytic_gflop_per_step": analytic / 1e9,
          "gflops": analytic / seconds / 1e9, "peak_gflops": peak_gflops,
          "share_of_peak": analytic / seconds / 1e9 / peak_gflops}


def bench_memory(configs: pathlib.Path, size: str, lengths, batch: int = 8) -> list[dict]:
  """Temporaries of one training step of the ``size`` model at each sequence length, for
  each remat mode (compiled, not run)."""
  config, base = size_config(configs, size)
  optimizer = pretrain.make_optimizer(config)
  rows = []
  for remat in ("none", "dots", "full"):
    for s in lengths:
      c = base.replace(remat=remat, max_position_embeddings=max(s, base.max_position_embeddings))
      abstract = jax.eval_shape(lambda c=c: train_lib.init(model_lib.create(c, 0),
                                                           optimizer)[1])
      graphdef = _graphdef(c)
      step = jax.jit(train_lib.make_step(graphdef, optimizer))
      batch_spec = {"tokens": jax.ShapeDtypeStruct((batch, s + 1), jnp.int32),
                    "weights": jax.ShapeDtypeStruct((batch, s + 1), jnp.float32)}
      compiled = step.lower(abstract, batch_spec).compile()
      m = compiled.memory_analysis()
      rows.append({"suite": "lm_memory", "size": size, "remat": remat, "seq_len": s,
                   "batch": batch, "temp_mib": m.temp_size_in_bytes / 2 ** 20})
  return rows


@functools.lru_cache(maxsize=None)
def _graphdef(c):
  from flax import nnx  # pylint: disable=g-import-not-at-top
  return nnx.split(nnx.eval_shape(lambda: model_lib.Transformer(c, rngs=nnx.Rngs(0))),
                   nnx.Param)[0]


def print_tables(train_rows: list[dict], memory_rows: list[dict]) -> None:
  if train_rows:
    print("\n| LM training | params | batch x seq | tokens/s | ms/step | GFLOP/step | GFLOP/s | "
          "share of matmul peak | compile s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in train_rows:
      print(f"| {r['size']} {r['arch']} | {r['params_m']:.2f}M | {r['batch']} x {r['seq_len']} "
            f"| {r['tokens_per_s']:.0f} | {r['step_ms']:.0f} | "
            f"{r['analytic_gflop_per_step']:.2f} | {r['gflops']:.1f} | "
            f"{r['share_of_peak']:.0%} of {r['peak_gflops']:.0f} GFLOP/s | "
            f"{r['compile_s']:.1f} |")
  if memory_rows:
    lengths = sorted({r["seq_len"] for r in memory_rows})
    print("\n| LM step temporaries (MiB), batch "
          f"{memory_rows[0]['batch']} | " + " | ".join(f"S = {s}" for s in lengths) + " |")
    print("|---|" + "---|" * len(lengths))
    for remat in ("none", "dots", "full"):
      cells = {r["seq_len"]: r["temp_mib"] for r in memory_rows if r["remat"] == remat}
      print(f"| remat={remat} | " + " | ".join(f"{cells[s]:.1f}" for s in lengths) + " |")
