r"""Benchmark suites: throughput, compile time, FLOP/s against a measured peak, memory
(``experiments/benchmark.py`` runs them; ``docs/benchmark.md``). Each ``bench_*`` takes the
directory of the experiment configs it times (``experiments/configs``).

Suites:

* ``sinusoid``: each gradient-based learner (``--learners``) on K-shot sinusoids at the MAML
  paper's settings. ``few_shot``: Prototypical Networks, 5-way 1-shot Conv-4 episodes on
  synthetic 28x28 images (no dataset needed). Each row times ``train.make_chunk_fn`` (what
  ``meta_train.py`` runs): ``--steps_per_call`` outer steps per compiled call, median over
  ``--repeats`` calls; inner steps/s = outer steps/s x meta-batch x inner steps. ``1
  step/call`` is the same outer step jitted alone and called from Python once per step.
  GFLOP/s uses XLA's cost analysis of one outer step; the peak is a measured 2048^3 float32
  matmul. Memory is XLA's buffer assignment for the compiled chunk (arguments + outputs +
  temporaries), what the device must hold.
* ``handwritten``: the engine's chunk against the same meta-learning written by hand in plain
  JAX (:mod:`metalearn.handwritten`: the MLP as matmuls, ``jax.grad`` inner steps, optax, a
  ``lax.scan`` over steps, tasks drawn on device with the same keys), for each ``--learners``
  at the sinusoid settings. Both are compiled first, then timed in alternating rounds of
  ``--steps_per_call`` steps (``--repeats`` rounds) in one process; the row gives each one's
  median outer steps/s, the median ratio engine / hand-written with its range over rounds,
  and both programs' FLOPs and dot counts from XLA. With several devices
  (``--cpu_devices``) each learner is also timed with the engine's tasks split over all of
  them (the hand-written step stays on one device), where their count divides the
  meta-batch (otherwise the row is skipped with a warning).
* ``memory``: full backprop through a T-step MAML unroll (one sinusoid task), T = 10 ... 1000,
  with and without ``remat``; temporaries of the compiled gradient, a table and
  ``memory_scaling.png`` in ``--out_dir``.
* ``omniglot``: MAML 5-way 1-shot on Conv-4 at meta-batch 32 (the paper's outer step) on
  Omniglot-mini's meta-training classes, for each ``--conv_impls``: episodes/s, images/s
  (support + query), and the episode sampler's share of a step (a jitted scan of
  ``sample_batch`` alone over the training step's time; goal < 5%).

* ``lopt``: PES meta-training of learned optimizers at learned_optimization's benchmark
  settings: a 64-32-10 ReLU MLP task, batch 128, 4 tasks x 2 antithetic, truncation 50;
  ``mlp_lopt`` (two hidden layers of 32, 19 features, like its MLPLOpt) and ``small_lopt``
  (one hidden layer of 8, Adafactor features). Data: an in-memory pool of 8x8 images (like its
  FashionMNIST-8x8 task; random images, so no download) and, for comparison, the procedural
  Gaussian mixture drawn fresh each step. Also each optimizer's cost per inner step and state
  memory relative to Adam (a 50-step unroll on 8 tasks, forward only; ``--lopt_size=tiny``:
  10 steps on 2 tasks of batch 16). With
  ``--cpu_devices=N`` (e.g. ``-1``: one device per core) each row is timed on one device and
  again with the runs split over the N devices' mesh, as ``meta_train.py`` runs
  ``--config.mesh.cpu_devices=N``.

* ``icl``: meta-training of in-context learners (``experiments/configs/in_context.py``): a
  GPT-2 style transformer on d = 5 linear regression with 11 points, batch 64, at width 64 /
  2 layers / 2 heads (the PyTorch reference code's small setting) and at width 256 / 4 layers
  (``--icl_widths``), each in the interleaved and the packed layout; training steps/s, tokens/s
  and GFLOP/s against the matmul peak (XLA's count of one outer step: forward and backward).

``--json`` saves every row; ``--compare=OLD.json`` prints this run's numbers as ratios of
another run's (two commits, two machines), matched by suite and row name.
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn import config as config_lib
from metalearn import evaluators, experiment, handwritten, plots, train
from metalearn.datasets import ClassImages
from metalearn.learners import OptaxRule, OptimizerLearner
from metalearn.learners.mlp_lopt import MLPLOpt
from metalearn.tasks import ClassificationTraining, FewShotClassification, sample_batch
from metalearn.unroll import unroll



SUITES = ("sinusoid", "handwritten", "few_shot", "memory", "omniglot", "lopt", "icl", "lm",
          "tinker")



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


def _memory_mib(compiled) -> float:
  m = compiled.memory_analysis()
  if m is None:  # a backend without buffer statistics
    return float("nan")
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
          - m.alias_size_in_bytes) / 2 ** 20


def _flops(compiled) -> float:
  """FLOPs of a compiled program by XLA's cost analysis (a loop body counts once)."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get("flops", float("nan")))


def _bench_chunk(suite: str, name: str, config, exp, steps: int, repeats: int) -> dict:
  state = train.init_state(exp, config.seed)
  chunk = train.make_chunk_fn(exp, config.seed)
  t0 = time.perf_counter()
  compiled = chunk.lower(state, exp.family, steps).compile()
  compile_s = time.perf_counter() - t0
  chunk_s = _median_seconds(lambda: compiled(state, exp.family), repeats)
  # one compiled outer step: its FLOPs, and the one-step-per-call loop (compiled once for both;
  # a chunk of one step is that program)
  single = compiled if steps == 1 else jax.jit(train.make_outer_step(exp, config.seed)).lower(
      state, exp.family).compile()
  flops_per_step = _flops(single)
  loop_steps = max(1, min(200, steps))

  def python_loop():
    s = state
    for _ in range(loop_steps):
      s, _ = single(s, exp.family)
    return s
  loop_s = _median_seconds(python_loop, repeats) / loop_steps
  inner = max(exp.learner.num_inner_steps, 1)
  return {"suite": suite, "learner": name, "k": config.task.get("num_support", 0),
          "meta_batch": config.meta_batch_size, "inner_steps": exp.learner.num_inner_steps,
          "steps_per_call": steps, "outer_steps_per_s": steps / chunk_s,
          "inner_steps_per_s": steps / chunk_s * config.meta_batch_size * inner,
          "one_step_per_call_per_s": 1 / loop_s, "compile_s": compile_s,
          "mflop_per_step": flops_per_step / 1e6,
          "gflops": flops_per_step * steps / chunk_s / 1e9, "memory_mib": _memory_mib(compiled)}


def _config(path: pathlib.Path, arg: str, devices: int = 1):
  """``path``'s config for ``arg``, complete (every option at its value), its tasks split over
  ``devices`` devices (``mesh.data``)."""
  config = config_lib.load_config_module(str(path)).get_config(arg)
  config.mesh.data = devices
  return config_lib.validate(config)


def bench_learner(configs: pathlib.Path, name: str, k: int, steps: int, repeats: int) -> dict:
  config = _config(configs / "maml_sinusoid.py", f"{name},k={k}")
  return _bench_chunk("sinusoid", name, config, experiment.build(config), steps, repeats)


def _dots(compiled) -> int:
  """Dot operations in a compiled program's optimised HLO (a loop body counts once)."""
  return compiled.as_text().count(" dot(")


def handwritten_meta_batch(configs: pathlib.Path, name: str, k: int) -> int:
  """The meta-batch the ``handwritten`` suite runs ``name`` at (split over devices only when
  the device count divides it)."""
  return _config(configs / "maml_sinusoid.py", f"{name},k={k}").meta_batch_size


def bench_handwritten(configs: pathlib.Path, name: str, k: int, steps: int, rounds: int,
                      devices: int = 1) -> dict:
  """The engine's chunk vs :mod:`metalearn.handwritten` at the same settings, timed in
  alternating rounds in this process (see the module docstring)."""
  config = _config(configs / "maml_sinusoid.py", f"{name},k={k}", devices)
  exp = experiment.build(config)
  state = train.init_state(exp, config.seed)
  engine = train.make_chunk_fn(exp, config.seed).lower(state, exp.family, steps).compile()
  # The hand-written step runs on one device, from the same meta-parameters, same tasks.
  chunk = handwritten.make_chunk(config, exp.family, experiment.run_keys(config.seed)[2])
  theta, opt_state = jax.device_get((state.theta, state.opt_state))
  plain = chunk.lower(theta, opt_state, 0, steps).compile()
  run_engine = lambda: engine(state, exp.family)
  run_plain = lambda: plain(theta, opt_state, 0)
  jax.block_until_ready((run_engine(), run_plain()))
  engine_s, plain_s = [], []
  for _ in range(rounds):
    for fn, times in ((run_plain, plain_s), (run_engine, engine_s)):
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times.append(time.perf_counter() - t0)
  ratios = np.asarray(plain_s) / np.asarray(engine_s)
  return {"suite": "handwritten", "learner": name, "k": k, "meta_batch": config.meta_batch_size,
          "inner_steps": exp.learner.num_inner_steps, "devices": devices,
          "steps_per_call": steps, "rounds": rounds,
          "outer_steps_per_s": steps / float(np.median(engine_s)),
          "handwritten_steps_per_s": steps / float(np.median(plain_s)),
          "ratio": float(np.median(ratios)), "ratio_min": float(ratios.min()),
          "ratio_max": float(ratios.max()),
          "mflop_per_step": _flops(engine) / 1e6,
          "handwritten_mflop_per_step": _flops(plain) / 1e6,
          "dots": _dots(engine), "handwritten_dots": _dots(plain)}


def bench_protonet(configs: pathlib.Path, steps: int, repeats: int) -> dict:
  """ProtoNets on 5-way 1-shot Conv-4 episodes of synthetic 28x28 images (64 classes x 20),
  one episode per outer step with 5 queries per class (Snell et al.; Omniglot-mini)."""
  config = config_lib.validate(_config(configs / "omniglot.py", "protonet,ways=5,shots=1,mini"))
  images = np.random.default_rng(0).integers(0, 256, (64, 20, 28, 28, 1), dtype=np.uint8)
  classes = ClassImages(images, np.full(64, 20), tuple(map(str, range(64))))
  t = config.task
  family = FewShotClassification.from_classes(classes, t.num_ways, t.num_support, t.num_query)
  return _bench_chunk("few_shot", "protonet", config, experiment.build(config, family=family),
                      steps, repeats)


def bench_memory(configs: pathlib.Path, lengths: list[int]) -> list[dict]:
  """Temporaries of the meta-gradient of one T-step MAML unroll, with and without remat."""
  config = _config(configs / "maml_sinusoid.py", "maml,k=10")
  family = experiment.make_family(config)
  learner = experiment.make_learner(config, family)
  theta = learner.init(jax.random.key(0))
  episode = family.sample(jax.random.key(1))
  rows = []
  for remat in (False, True):
    for t in lengths:
      loss = lambda th, t=t, remat=remat: unroll(
          learner, th, learner.init_state(th, episode), episode, t, remat)[1][-1]
      compiled = jax.jit(jax.grad(loss)).lower(theta).compile()
      rows.append({"suite": "memory", "inner_steps": t, "remat": remat,
                   "temp_mib": compiled.memory_analysis().temp_size_in_bytes / 2 ** 20})
  return rows


def memory_plot(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for remat in (False, True):
    r = [x for x in rows if x["remat"] == remat]
    ax.loglog([x["inner_steps"] for x in r], [x["temp_mib"] for x in r], "o-",
              label="remat (sqrt-T segments)" if remat else "plain backprop")
  t = np.array(sorted({x["inner_steps"] for x in rows}), float)
  first = [x for x in rows if x["remat"]][0]
  ax.loglog(t, first["temp_mib"] * np.sqrt(t / t[0]), "k:", label="∝ sqrt(T)")
  ax.set(xlabel="inner steps T", ylabel="temporary memory (MiB)",
         title="MAML meta-gradient memory vs unroll length")
  ax.legend()
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def bench_omniglot(configs: pathlib.Path, config_arg: str, conv_impl: str, steps: int,
                   repeats: int, meta_batch: int) -> dict:
  """Episodes/s of the few-shot outer step and the sampler's share of it."""
  config = _config(configs / "omniglot.py", config_arg)
  config.model.conv_impl, config.meta_batch_size = conv_impl, meta_batch
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
  return {"suite": "omniglot", "conv_impl": conv_impl, "config": config_arg,
          "meta_batch": meta_batch, "inner_steps": exp.learner.num_inner_steps,
          "step_s": step_s, "episodes_per_s": meta_batch / step_s, "images_per_s": images / step_s,
          "sample_s": sample_s, "sampler_share": sample_s / step_s, "compile_s": compile_s}


def _image_pool_family(batch_size: int):
  """An in-memory pool of random 8x8 images in 10 classes (6000 per split), like a dataset."""
  rng = np.random.default_rng(0)
  per_class = [rng.integers(0, 256, (600, 8, 8, 1), dtype=np.uint8) for _ in range(10)]
  classes = ClassImages.from_lists(per_class, [str(c) for c in range(10)])
  return ClassificationTraining.from_class_images(classes, classes, batch_size=batch_size)


def bench_lopt(configs: pathlib.Path, lopt: str, data: str, steps: int, repeats: int, size: str = "small",
               devices: int = 1) -> dict:
  """PES meta-training throughput of ``lopt`` on ``data`` ('images' or 'gaussian_mixture'),
  the ``2 x 4`` runs split over a mesh of ``devices`` devices."""
  config = _config(configs / "learned_optimizer.py", f"{lopt},{size}")
  config.meta_batch_size = min(config.meta_batch_size, 4)
  # the most devices, up to ``devices``, that split the meta-batch evenly
  devices = max(d for d in range(1, devices + 1) if config.meta_batch_size % d == 0)
  config.mesh.data = devices
  config.task.data = "gaussian_mixture" if data == "gaussian_mixture" else config.task.data
  family = (_image_pool_family(config.task.batch_size) if data == "images"
            else experiment.make_family(config))
  name = f"{lopt} ({data}{f', {devices} devices' if devices > 1 else ''})"
  row = _bench_chunk("lopt", name, config, experiment.build(config, family), steps, repeats)
  # every outer step runs meta_batch pairs: 2 trajectories of truncation_length steps each
  row["inner_steps_per_s"] = (row["outer_steps_per_s"] * 2 * config.meta_batch_size
                              * config.estimator.truncation_length)
  row["inner_steps"] = config.estimator.truncation_length
  # XLA's cost analysis counts a loop body once: count one inner step of one trajectory
  exp = experiment.build(config, family)
  theta = exp.learner.init(jax.random.key(0))
  task = family.sample(jax.random.key(1))
  inner = exp.learner.init_state(theta, task)
  flops = _flops(jax.jit(exp.learner.step).lower(theta, inner, task).compile())
  row["mflop_per_step"] = flops * 2 * config.meta_batch_size * row["inner_steps"] / 1e6
  row["gflops"] = flops * row["inner_steps_per_s"] / 1e9
  return row


def bench_icl(configs: pathlib.Path, width: int, layers: int, heads: int, layout: str, steps: int,
              repeats: int) -> dict:
  """Meta-training throughput of an in-context transformer on d = 5 linear regression."""
  config = _config(configs / "in_context.py", f"linear_regression,small,layout={layout}")
  config.model.width, config.model.num_layers, config.model.num_heads = width, layers, heads
  exp = experiment.build(config)
  state = train.init_state(exp, config.seed)
  chunk = train.make_chunk_fn(exp, config.seed)
  t0 = time.perf_counter()
  compiled = chunk.lower(state, exp.family, steps).compile()
  compile_s = time.perf_counter() - t0
  step_s = _median_seconds(lambda: compiled(state, exp.family), repeats) / steps
  flops = _flops(compiled if steps == 1 else jax.jit(train.make_outer_step(exp, config.seed))
                 .lower(state, exp.family).compile())  # a chunk of one step is that program
  tokens = config.task.num_points * (2 if layout == "interleaved" else 1)
  return {"suite": "icl", "model": f"transformer w{width} L{layers} H{heads}", "layout": layout,
          "meta_batch": config.meta_batch_size, "tokens": tokens, "steps_per_s": 1 / step_s,
          "tokens_per_s": config.meta_batch_size * tokens / step_s, "compile_s": compile_s,
          "mflop_per_step": flops / 1e6, "gflops": flops / step_s / 1e9}


def bench_lopt_cost(repeats: int, size: str = "small") -> list[dict]:
  """Seconds per inner step and state floats per parameter of each optimizer vs Adam: 8 tasks
  of batch 128, 50 steps (``size='tiny'``: 2 tasks of batch 16, 10 steps)."""
  batch, num_tasks, steps = (16, 2, 10) if size == "tiny" else (128, 8, 50)
  family = _image_pool_family(batch)
  tasks = sample_batch(family, jax.random.key(0), num_tasks)
  rules = {"adam": OptaxRule(optax.adam(1e-3)), "mlp_lopt": MLPLOpt(),
           "small_lopt": MLPLOpt(hidden=(8,), features="adafactor")}
  out = []
  for name, rule in rules.items():
    learner = OptimizerLearner(family, rule, 1000)
    theta = learner.init(jax.random.key(1))
    states = jax.jit(jax.vmap(learner.init_state, in_axes=(None, 0)))(theta, tasks)
    run = jax.jit(lambda th, st, tk: jax.vmap(
        lambda s, t: unroll(learner, th, s, t, steps)[1], in_axes=(0, 0))(st, tk))
    sec = _median_seconds(lambda: run(theta, states, tasks), repeats) / (num_tasks * steps)
    params = family.init_params(jax.tree.map(lambda a: a[0], tasks))
    n_params = sum(p.size for p in jax.tree.leaves(params))
    state = rule.init_state(theta, params, 1000)
    n_state = sum(np.size(x) for x in jax.tree.leaves(state) if np.ndim(x) > 0)
    out.append({"suite": "lopt_cost", "optimizer": name, "us_per_inner_step": sec * 1e6,
                "state_floats_per_param": n_state / n_params, "tasks": num_tasks,
                "batch": batch})
  adam = out[0]
  for r in out:
    r["cost_vs_adam"] = r["us_per_inner_step"] / adam["us_per_inner_step"]
    r["state_vs_adam"] = r["state_floats_per_param"] / adam["state_floats_per_param"]
  return out


def _row_key(r: dict) -> str:
  if r["suite"] == "omniglot":
    return f"omniglot/{r['config']}/{r['conv_impl']}/{r['meta_batch']}"
  if r["suite"] == "memory":
    return f"memory/T={r['inner_steps']}/remat={r['remat']}"
  if r["suite"] == "lopt_cost":
    return f"lopt_cost/{r['optimizer']}"
  if r["suite"] == "icl":
    return f"icl/{r['model']}/{r['layout']}/{r['meta_batch']}"
  if r["suite"] == "handwritten":
    return f"handwritten/{r['learner']}/{r['k']}/{r['meta_batch']}/{r['devices']}"
  if r["suite"] == "lm":
    return f"lm/{r['size']}/{r['arch']}/{r['batch']}x{r['seq_len']}"
  if r["suite"] == "tinker":
    return f"tinker/{r['size']}/{r['arch']}/r{r['rank']}/{r['batch']}x{r['seq_len']}"
  if r["suite"] == "lm_memory":
    return f"lm_memory/{r['size']}/remat={r['remat']}/{r['batch']}x{r['seq_len']}"
  return f"{r['suite']}/{r['learner']}/{r['k']}/{r['meta_batch']}"


def compare(rows: list[dict], path: str) -> None:
  old = json.loads(pathlib.Path(path).read_text())
  old_rows = {_row_key(r): r for key in ("rows", "handwritten", "few_shot", "memory",
                                         "lopt_cost", "icl", "lm", "lm_memory", "tinker")
              for r in old.get(key, [])}
  fields = ("outer_steps_per_s", "episodes_per_s", "steps_per_s", "tokens_per_s", "compile_s",
            "gflops", "memory_mib", "temp_mib", "us_per_inner_step",
            "forward_backward_tokens_per_s", "sampled_tokens_per_s")
  print(f"\nThis run / {path} ({old.get('hardware', '?')}):\n")
  print("| row | " + " | ".join(fields) + " |")
  print("|---" * (len(fields) + 1) + "|")
  for r in rows:
    o = old_rows.get(_row_key(r))
    if o is None:
      continue
    cells = [f"{r[f] / o[f]:.2f}x" if f in r and f in o and o[f] else "—" for f in fields]
    print(f"| {_row_key(r)} | " + " | ".join(cells) + " |")


def print_handwritten(rows: list[dict]) -> None:
  """The ``handwritten`` suite's table (markdown)."""
  print("| learner | K | meta-batch | devices | engine steps/s | hand-written steps/s | "
        "engine / hand-written: median (range) | MFLOP/step engine, hand-written | "
        "dots engine, hand-written |")
  print("|---" * 9 + "|")
  for r in rows:
    print(f"| {r['learner']} | {r['k']} | {r['meta_batch']} | {r['devices']} | "
          f"{r['outer_steps_per_s']:.0f} | {r['handwritten_steps_per_s']:.0f} | "
          f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | "
          f"{r['mflop_per_step']:.2f}, {r['handwritten_mflop_per_step']:.2f} | "
          f"{r['dots']}, {r['handwritten_dots']} |")
  if rows:
    r = rows[0]
    print(f"\n{r['rounds']} alternating rounds of {r['steps_per_call']} outer steps; FLOPs and "
          "dots from XLA's cost analysis and optimised HLO of each program (a loop body counts "
          "once: per outer step).\n")


def print_tables(peak: float, rows: list[dict], memory: list[dict], few_shot: list[dict],
                 lopt_cost: list[dict], icl: list[dict], out_dir,
                 versus_handwritten: list[dict] = ()) -> None:
  """Prints every suite's table (markdown) and writes the memory suite's plot into
  ``out_dir``."""
  print(f"\n{evaluators.hardware()}; matmul peak {peak:.0f} GFLOP/s\n")
  if versus_handwritten:
    print_handwritten(list(versus_handwritten))
  if rows:
    print("| suite | learner | K | meta-batch | inner steps | outer steps/s | inner steps/s | "
          "1 step/call, steps/s | compile s | MFLOP/step | GFLOP/s (% peak) | memory MiB |")
    print("|---" * 12 + "|")
    for r in rows:
      print(f"| {r['suite']} | {r['learner']} | {r['k']} | {r['meta_batch']} | "
            f"{r['inner_steps']} | {r['outer_steps_per_s']:.0f} | "
            f"{r['inner_steps_per_s']:.0f} | {r['one_step_per_call_per_s']:.0f} | "
            f"{r['compile_s']:.2f} | {r['mflop_per_step']:.1f} | "
            f"{r['gflops']:.1f} ({100 * r['gflops'] / peak:.1f}%) | {r['memory_mib']:.1f} |")
    print()
  if memory:
    lengths = sorted({r["inner_steps"] for r in memory})
    by = {(r["inner_steps"], r["remat"]): r["temp_mib"] for r in memory}
    print("| MAML meta-gradient memory, MiB | " + " | ".join(f"T={t}" for t in lengths) + " |")
    print("|---" * (len(lengths) + 1) + "|")
    for remat in (False, True):
      print(f"| {'remat' if remat else 'plain'} | "
            + " | ".join(f"{by[t, remat]:.2f}" for t in lengths) + " |")
    plot = memory_plot(memory, pathlib.Path(out_dir) / "memory_scaling.png")
    print(f"\nplot: {plot}\n")
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
  if lopt_cost:
    print(f"| optimizer | us per inner step ({lopt_cost[0]['tasks']} tasks of batch "
          f"{lopt_cost[0]['batch']}, forward) | x Adam | state floats/param | x Adam |")
    print("|---|---|---|---|---|")
    for r in lopt_cost:
      print(f"| {r['optimizer']} | {r['us_per_inner_step']:.1f} | {r['cost_vs_adam']:.2f} | "
            f"{r['state_floats_per_param']:.2f} | {r['state_vs_adam']:.2f} |")
    print()
  if icl:
    print("| in-context model | layout | batch | tokens/prompt | steps/s | tokens/s | compile s | "
          "MFLOP/step | GFLOP/s (% peak) |")
    print("|---" * 9 + "|")
    for r in icl:
      print(f"| {r['model']} | {r['layout']} | {r['meta_batch']} | {r['tokens']} | "
            f"{r['steps_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['compile_s']:.1f} | "
            f"{r['mflop_per_step']:.1f} | {r['gflops']:.1f} ({100 * r['gflops'] / peak:.1f}%) |")
    print()
