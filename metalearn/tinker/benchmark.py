"""Speed rows of the in-process Tinker primitives (``experiments/benchmark.py
--suites=tinker``): ``forward_backward`` and ``optim_step`` on LoRA adapters, and sampling, for
a base model of a ``configs/lm/pretrain.py`` size (randomly initialised: speed does not depend
on the weights).

``forward_backward`` tokens/s counts every input token of the batch; its model FLOP/s use the
forward + backward count of :func:`metalearn.lm.config.flops_per_token` (an upper bound for
LoRA, whose frozen weights need no weight gradient), shown as a share of the measured matmul
peak. Sampling tokens/s counts generated tokens (``num_samples`` sequences decoded together).
"""

import pathlib
import tempfile
import time

import numpy as np
from tinker import types

from metalearn.lm import benchmark as lm_benchmark
from metalearn.lm import config as lm_config
from metalearn.lm import hf
from metalearn.lm import model as model_lib
from metalearn.lm import tokenizer as tok_lib
from metalearn.tinker.client import ServiceClient


def _median(fn, repeats):
  fn()  # warm-up (compilation)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def bench(configs: pathlib.Path, size: str, batch: int, seq_len: int, rank: int,
          num_samples: int, max_tokens: int, repeats: int, peak_gflops: float) -> dict:
  """One row: ``forward_backward`` / ``optim_step`` / sampling throughput."""
  _, c = lm_benchmark.size_config(configs, size)
  c = c.replace(max_position_embeddings=max(c.max_position_embeddings, seq_len + 64,
                                            32 + max_tokens))
  with tempfile.TemporaryDirectory() as directory:
    hf.save(model_lib.create(c, seed=0), directory)
    tok_lib.save(tok_lib.byte_level(), directory)
    trainer = ServiceClient({"base": directory}).create_lora_training_client(
        "base", rank=rank).result()
    rng = np.random.RandomState(0)
    data = [types.Datum(model_input=types.ModelInput.from_ints(
        rng.randint(0, c.vocab_size, seq_len).tolist()), loss_fn_inputs={
            "target_tokens": rng.randint(0, c.vocab_size, seq_len).astype(np.int64),
            "weights": np.ones(seq_len, np.float32)}) for _ in range(batch)]
    fb_s = _median(lambda: trainer.forward_backward(data, "cross_entropy").result(), repeats)
    step_s = _median(lambda: trainer.optim_step(types.AdamParams()).result(), repeats)
    sampler = trainer.save_weights_and_get_sampling_client("bench").result()
    prompt = types.ModelInput.from_ints(rng.randint(0, c.vocab_size, 32).tolist())
    params = types.SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=0)
    sample_s = _median(lambda: sampler.sample(prompt, num_samples, params).result(), repeats)
  tokens = batch * seq_len
  flops = lm_config.flops_per_token(c, seq_len) * tokens
  return {"suite": "tinker", "size": size, "arch": c.arch, "params_m": c.num_params() / 1e6,
          "rank": rank, "batch": batch, "seq_len": seq_len,
          "forward_backward_tokens_per_s": tokens / fb_s,
          "forward_backward_ms": fb_s * 1e3, "optim_step_ms": step_s * 1e3,
          "model_gflops": flops / fb_s / 1e9, "share_of_peak": flops / fb_s / 1e9 / peak_gflops,
          "peak_gflops": peak_gflops, "num_samples": num_samples, "max_tokens": max_tokens,
          "sampled_tokens_per_s": num_samples * max_tokens / sample_s,
          "sample_ms": sample_s * 1e3}


def print_table(rows: list[dict]) -> None:
  if not rows:
    return
  print("\n| Tinker primitives | params | LoRA rank | forward_backward tokens/s (batch x seq) | "
        "model GFLOP/s (share of peak) | optim_step ms | sampled tokens/s (samples x tokens) |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['size']} {r['arch']} | {r['params_m']:.2f}M | {r['rank']} | "
          f"{r['forward_backward_tokens_per_s']:.0f} ({r['batch']} x {r['seq_len']}) | "
          f"{r['model_gflops']:.1f} ({r['share_of_peak']:.0%} of {r['peak_gflops']:.0f}) | "
          f"{r['optim_step_ms']:.1f} | {r['sampled_tokens_per_s']:.0f} "
          f"({r['num_samples']} x {r['max_tokens']}) |")
