"""Pretraining a base decoder LM on an offline corpus: the logic behind
``experiments/lm_pretrain.py``.

A run tokenises its corpus (a byte-level BPE trained on the training split, saved in the
workdir so that a resumed run uses the same ids), packs it into sequences, and trains with a
jitted chunk of ``steps_per_call`` optimizer steps under ``lax.scan``; each step draws its
batch on device from ``fold_in(key, step)``, so the data order is a function of the step and a
resumed run continues bit-identically. Checkpoints are the project's verified orbax
checkpoints (``metalearn.checkpoint``); metrics go to ``metrics.jsonl`` and TensorBoard. The
end product is ``WORKDIR/model``: an HF-format directory (``config.json``, safetensors, the
tokenizer) that :func:`metalearn.lm.hf.load` and ``transformers`` both load, and
``WORKDIR/summary.json`` (losses, throughput, a sample).
"""

import functools
import json
import pathlib
import time
from typing import Callable

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from metalearn import checkpoint as checkpoint_lib
from metalearn import metrics_writer
from metalearn.lm import config as lm_config
from metalearn.lm import biography_book as bb
from metalearn.lm import corpus as corpus_lib
from metalearn.lm import generate, hf
from metalearn.lm import model as model_lib
from metalearn.lm import sharding as sharding_lib
from metalearn.lm import tokenizer as tok_lib
from metalearn.lm import train as train_lib
from metalearn.registry import ConfigError, Option, check_value, complete, unknown_key_message

def _mesh_axis(default: int) -> Option:
  return Option(default, check=lambda v: isinstance(v, int) and (v == -1 or v >= 1),
                accepts="a device count >= 1, or -1 (the devices the other axes leave)")


TOP = dict(
    seed=Option(0, ge=0, lt=2**31, doc="initialisation and data order"),
    init_from=Option("", doc="an HF-format model directory to continue training (its "
                     "tokenizer too; the lm and tokenizer groups are then unused); '': a "
                     "fresh model"),
    batch_size=Option(32, ge=1, doc="sequences per optimizer step"),
    seq_len=Option(128, ge=2, doc="tokens per training sequence"),
    num_steps=Option(1000, ge=1, doc="optimizer steps"),
    steps_per_call=Option(50, ge=1, doc="steps per compiled chunk (divides num_steps)"),
    eval_every=Option(200, ge=1, doc="evaluate the held-out loss every this many steps "
                      "(a multiple of steps_per_call)"),
    checkpoint_every=Option(200, ge=1, doc="checkpoint every this many steps (a multiple of "
                            "steps_per_call)"),
    keep_checkpoints=Option(2, ge=1, doc="recent checkpoints kept"),
    eval_sequences=Option(64, ge=1, doc="held-out sequences evaluated (at most)"),
)
GROUPS = dict(
    corpus=dict(
        name=Option("biographies", choices=("biographies", "files", "knowledge"),
                    doc="the corpus ('knowledge': the biography textbook with its questions, "
                    "metalearn.lm.biography_book, and QA accuracy in every evaluation)"),
        num_people=Option(2000, ge=1, doc="biographies, knowledge: people (knowledge: all of "
                          "them, whose biographies are all in the corpus)"),
        parts=Option("bios+qa", choices=("bios+qa", "bios", "qa"), doc="knowledge: the "
                     "biographies and the QA of the qa_fraction people (mix training), or "
                     "either alone (pretrain on bios, then fine-tune on qa)"),
        qa_fraction=Option(0.5, gt=0, lt=1, doc="knowledge: share of people whose QA is "
                           "trained on; the others' QA is the test"),
        multiplicity=Option(1, ge=1, doc="knowledge: biographies per person, each written "
                            "afresh"),
        permute=Option(False, doc="knowledge: sentences in random order"),
        fullname=Option(False, doc="knowledge: the full name in every sentence (else only "
                        "the first)"),
        qa_eval_people=Option(200, ge=1, doc="knowledge: people of each half whose questions "
                              "each evaluation asks (at most)"),
        docs_per_person=Option(4, ge=1, doc="biographies: renderings of each person"),
        eval_people=Option(200, ge=1, doc="biographies: held-out people"),
        directory=Option("", doc="files: the directory whose files are the corpus"),
        patterns=Option(corpus_lib.FILE_PATTERNS, length=(1, None), doc="files: glob "
                        "patterns relative to directory ('**' for any depth); one document "
                        "per matching file"),
        eval_fraction=Option(0.1, gt=0, lt=1, doc="files: share of files held out")),
    tokenizer=dict(
        kind=Option("bpe", choices=("bpe", "bytes"), doc="a byte-level BPE trained on the "
                    "training split, or plain bytes"),
        vocab_size=Option(512, ge=259, doc="bpe: tokens (bytes, merges and 3 special tokens)")),
    optimizer=dict(
        learning_rate=Option(3e-3, gt=0, doc="AdamW's peak learning rate"),
        warmup_steps=Option(50, ge=0, doc="linear warmup, then cosine decay to 10%"),
        weight_decay=Option(0.1, ge=0, doc="AdamW's decoupled weight decay (not on norms)"),
        b1=Option(0.9, ge=0, lt=1), b2=Option(0.95, ge=0, lt=1),
        clip_grad_norm=Option(1.0, ge=0, doc="global-norm clipping (0: off)")),
    mesh=dict(data=_mesh_axis(1), fsdp=_mesh_axis(-1), tensor=_mesh_axis(1)),
    sample=dict(
        prompt=Option("Ada Lovelace was born on", doc="the prompt of the sample in the summary"),
        max_tokens=Option(48, ge=1)),
)


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The complete, checked config; :class:`ConfigError` naming a wrong key or value."""
  allowed = {"size", "lm", *TOP, *GROUPS}
  for key in config.keys():
    if key not in allowed:
      raise ConfigError(unknown_key_message(key, key, allowed, "an LM pretraining config"))
  out = ml_collections.ConfigDict()
  out.size = config.get("size", "")
  for key, option in TOP.items():
    out[key] = check_value(key, config.get(key, option.default), option)
  for group, options in GROUPS.items():
    out[group] = complete(config.get(group), options, group, f"'{group}'")
  lm_config.from_group(config.get("lm") or {})  # checks the lm group
  out.lm = ml_collections.ConfigDict(dict(config.get("lm") or {}))
  for key in ("eval_every", "checkpoint_every", "num_steps"):
    if out[key] % out.steps_per_call:
      raise ConfigError(f"config key '{key}' ({out[key]}) must be a multiple of "
                        f"steps_per_call ({out.steps_per_call})")
  if out.corpus.name == "files" and not out.corpus.directory:
    raise ConfigError("corpus.name='files' needs corpus.directory")
  if out.init_from and not (pathlib.Path(out.init_from) / "config.json").exists():
    raise ConfigError(f"init_from={out.init_from!r} holds no config.json: an HF-format model "
                      "directory, such as a pretraining run's WORKDIR/model")
  return out


def knowledge_split(config) -> tuple[list[bb.QA], list[bb.QA], list[str]]:
  """The knowledge corpus's ``(trained QA, test QA, biographies)``: everyone's biographies,
  and the questions of the first ``qa_fraction`` of people (trained) and of the rest (test).
  A function of ``corpus`` and ``seed`` alone, so the stages of a protocol share people."""
  c = config.corpus
  people = bb.people(c.num_people, config.seed)
  n_qa = int(round(c.num_people * c.qa_fraction))
  if not 1 <= n_qa < c.num_people:
    raise ConfigError(f"corpus.qa_fraction={c.qa_fraction} of {c.num_people} people leaves "
                      "no QA to train on or none to test: more people or another fraction")
  rng = np.random.RandomState(config.seed + 1)
  aug = bb.Augmentation(c.multiplicity, c.permute, c.fullname)
  bios = [b for p in people for b in bb.biographies(p, aug, rng)]
  trained = [q for p in people[:n_qa] for q in bb.questions(p)]
  test = [q for p in people[n_qa:] for q in bb.questions(p)]
  return trained, test, bios


def _documents(config) -> tuple[list[str], list[str]]:
  c = config.corpus
  if c.name == "files":
    return corpus_lib.files(c.directory, c.eval_fraction, c.patterns)
  if c.name == "knowledge":
    trained, test, bios = knowledge_split(config)
    docs = (bios if "bios" in c.parts else []) + (
        [q.text for q in trained] if "qa" in c.parts else [])
    order = np.random.RandomState(config.seed + 2).permutation(len(docs))
    return [docs[i] for i in order], [q.text for q in test]
  return (corpus_lib.biographies(c.num_people, c.docs_per_person, config.seed),
          corpus_lib.biographies(c.eval_people, 1, config.seed + 10_000))


def qa_rows(tok: tok_lib.Tokenizer, qas: list[bb.QA]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(tokens, valid, answer)``, each ``[N, L]``: each question, a space and its answer,
  right-padded; ``valid`` marks the real tokens, ``answer`` the answer's (the targets an exact
  answer must get right)."""
  rows = []
  for qa in qas:
    prompt = tok.encode(qa.question, bos=True)
    answer = tok.encode(" " + qa.answer, bos=False)
    rows.append((prompt + answer, len(prompt)))
  length = max(len(ids) for ids, _ in rows)
  pad = tok.pad_id if tok.pad_id is not None else tok.eos_id
  tokens = np.full((len(rows), length), pad, np.int32)
  valid = np.zeros((len(rows), length), bool)
  answer = np.zeros((len(rows), length), bool)
  for i, (ids, start) in enumerate(rows):
    tokens[i, :len(ids)] = ids
    valid[i, :len(ids)] = True
    answer[i, start:len(ids)] = True
  return tokens, valid, answer


def make_answer_check(graphdef) -> Callable:
  """``check(params, tokens, valid, answer) -> bool [N]``: whether greedy next-token
  predictions get every answer token right (teacher-forced: the same as greedy decoding
  producing the answer exactly)."""

  def check(params, tokens, valid, answer):
    model = nnx.merge(graphdef, params)
    logits, _ = model(tokens[:, :-1], attention_mask=valid[:, :-1])
    right = jnp.argmax(logits, -1) == tokens[:, 1:]
    return jnp.all(right | ~answer[:, 1:], axis=-1)

  return check


def qa_accuracy(correct: np.ndarray, qas: list[bb.QA], prefix: str) -> dict[str, float]:
  """``{prefix}_accuracy`` (exact answers over all questions) and ``{prefix}/{attribute}``."""
  out = {f"{prefix}_accuracy": float(np.mean(correct))}
  for attribute in dict.fromkeys(q.attribute for q in qas):
    picked = [i for i, q in enumerate(qas) if q.attribute == attribute]
    out[f"{prefix}/{attribute}"] = float(np.mean(correct[picked]))
  return out


def _tokenizer(config, train_docs, workdir: pathlib.Path) -> tok_lib.Tokenizer:
  if config.init_from:
    return tok_lib.load(config.init_from)
  saved = workdir / "tokenizer"
  if (saved / "tokenizer.json").exists():
    return tok_lib.load(saved)
  if config.tokenizer.kind == "bytes":
    tok = tok_lib.byte_level()
  else:
    tok = tok_lib.train_bpe(train_docs, config.tokenizer.vocab_size)
  if jax.process_index() == 0:
    tok_lib.save(tok, saved)
  return tok


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optimizer
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, o.learning_rate, max(o.warmup_steps, 1), max(config.num_steps, o.warmup_steps + 1),
      end_value=o.learning_rate * 0.1)

  def decay_mask(params):  # no weight decay on norms and biases
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not any(w in jax.tree_util.keystr(path) for w in ("norm", "bias")),
        params)

  parts = [optax.clip_by_global_norm(o.clip_grad_norm)] if o.clip_grad_norm else []
  parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay,
                           mask=decay_mask))
  return optax.chain(*parts)


def model_config(config, tokenizer: tok_lib.Tokenizer | None = None) -> lm_config.LMConfig:
  """The model a validated run config trains: its ``lm`` group, with the vocabulary (and special
  tokens) of ``tokenizer`` (else ``tokenizer.vocab_size``) and a context of ``seq_len`` where
  the group leaves them out."""
  group = dict(config.lm)
  group.setdefault("vocab_size", tokenizer.vocab_size if tokenizer is not None
                   else config.tokenizer.vocab_size)
  group.setdefault("max_position_embeddings", config.seq_len)
  if tokenizer is not None:
    group.update(bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                 pad_token_id=tokenizer.pad_id)
  return lm_config.from_group(group)


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Trains (or resumes) the run in ``workdir``, exports the model, returns the summary."""
  config = validate(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  train_docs, eval_docs = _documents(config)
  tok = _tokenizer(config, train_docs, workdir)
  if config.init_from:
    c = lm_config.from_hf(lm_config.read_hf(pathlib.Path(config.init_from) / "config.json"))
  else:
    c = model_config(config, tok)
  tok_lib.check_matches(tok, c, "lm.vocab_size")
  if c.max_position_embeddings < config.seq_len:
    raise ConfigError(f"lm.max_position_embeddings ({c.max_position_embeddings}) < seq_len "
                      f"({config.seq_len})")
  train_rows = corpus_lib.pack(tok.encode_batch(train_docs), config.seq_len, tok.eos_id)
  eval_rows = corpus_lib.pack(tok.encode_batch(eval_docs), config.seq_len, tok.eos_id)
  eval_rows = eval_rows[:config.eval_sequences]
  logging.info("corpus: %d training sequences (%d tokens), %d held out; model: %s, %.2fM "
               "parameters", len(train_rows), train_rows.size, len(eval_rows), c.arch,
               c.num_params() / 1e6)

  m = config.mesh
  mesh = sharding_lib.make_mesh(m.data, m.fsdp, m.tensor)
  batch_devices = mesh.shape["data"] * mesh.shape["fsdp"]
  if config.batch_size % batch_devices:
    raise ConfigError(f"batch_size ({config.batch_size}) must be a multiple of mesh.data x "
                      f"mesh.fsdp ({batch_devices})")
  optimizer = make_optimizer(config)
  model = (hf.load(config.init_from, mesh) if config.init_from
           else model_lib.create(c, config.seed, mesh))
  graphdef, state = train_lib.init(model, optimizer, mesh)
  del model
  shardings = train_lib.state_shardings(state, mesh, optimizer)
  checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
  restored = checkpointer.restore_latest(jax.tree.map(np.asarray, checkpoint_lib.flatten_by_path(state)))
  start = 0
  if restored is not None:
    flat, start = restored
    state = jax.device_put(checkpoint_lib.unflatten_by_path(state, flat), shardings)
  writer = metrics_writer.MetricsWriter(workdir, resume_step=start)

  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  train_tokens = jax.device_put(train_rows, replicated)
  eval_tokens = jax.device_put(eval_rows, replicated)
  data_key = jax.random.key(config.seed + 1)
  step_fn = train_lib.make_step(graphdef, optimizer)
  batch_sharding = train_lib.batch_sharding(mesh)
  b = config.batch_size

  @functools.partial(jax.jit, out_shardings=(shardings, None), donate_argnums=0)
  def chunk(state, tokens):
    def one(state, _):
      idx = jax.random.randint(jax.random.fold_in(data_key, state.step), (b,), 0,
                               tokens.shape[0])
      rows = jax.lax.with_sharding_constraint(tokens[idx], batch_sharding)
      return step_fn(state, {"tokens": rows, "weights": jnp.ones(rows.shape, jnp.float32)})
    state, metrics = jax.lax.scan(one, state, None, length=config.steps_per_call)
    skipped = jnp.sum(metrics.pop("skipped"))
    return state, {**jax.tree.map(jnp.mean, metrics), "skipped": skipped}

  @jax.jit
  def evaluate(params, tokens):
    batch = {"tokens": tokens, "weights": jnp.ones(tokens.shape, jnp.float32)}
    _, metrics = train_lib.loss_and_metrics(params, graphdef, batch)
    return metrics

  qa_sets = {}  # name -> (questions, their rows on the devices)
  if config.corpus.name == "knowledge":
    trained, test, _ = knowledge_split(config)
    per = len(bb.ATTRIBUTES)
    for name, qas in (("qa_train", trained), ("qa_test", test)):
      qas = qas[:config.corpus.qa_eval_people * per]
      qa_sets[name] = (qas, [jax.device_put(a, replicated) for a in qa_rows(tok, qas)])
    answer_check = jax.jit(make_answer_check(graphdef))

  def qa_metrics(params) -> dict[str, float]:
    out = {}
    for name, (qas, rows) in qa_sets.items():
      out.update(qa_accuracy(np.asarray(answer_check(params, *rows)), qas, name))
    return out

  summary_path = workdir / "summary.json"
  t_start, tokens_seen, last = time.time(), 0, {}
  step = start
  with jax.set_mesh(mesh):
    while step < config.num_steps:
      t0 = time.time()
      state, metrics = chunk(state, train_tokens)
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      dt = time.time() - t0
      step += config.steps_per_call
      tokens_seen += config.steps_per_call * b * config.seq_len
      metrics["tokens_per_sec"] = config.steps_per_call * b * config.seq_len / dt
      if metrics["skipped"]:
        logging.warning("step %d: %d step(s) with a non-finite loss or gradient were skipped",
                        step, metrics["skipped"])
      if step % config.eval_every == 0 or step == config.num_steps:
        ev = jax.device_get(evaluate(state.params, eval_tokens))
        metrics.update(eval_loss=float(ev["loss"]), eval_accuracy=float(ev["accuracy"]),
                       **qa_metrics(state.params))
      writer.write(step, metrics)
      last = metrics
      logging.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
      if step % config.checkpoint_every == 0 or step == config.num_steps:
        checkpointer.save(step, checkpoint_lib.flatten_by_path(state))
  checkpointer.close()
  writer.close()
  train_seconds = time.time() - t_start

  model = nnx.merge(graphdef, state.params)
  export = workdir / "model"
  hf.save(model, export)
  tok_lib.save(tok, export, model_max_length=c.max_position_embeddings)
  with jax.set_mesh(mesh):
    ev = jax.device_get(evaluate(state.params, eval_tokens))
    qa = qa_metrics(state.params)
  prompt = tok.encode(config.sample.prompt, bos=False)
  out = generate.sample(model, [prompt], generate.SamplingParams(
      max_tokens=min(config.sample.max_tokens, c.max_position_embeddings - len(prompt)),
      temperature=0.0, stop=(tok.eos_id,)))[0]
  previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
  summary = dict(
      size=config.size, arch=c.arch, params=c.num_params(), steps=int(state.step),
      seed=config.seed, final_train_loss=last.get("loss", previous.get("final_train_loss")),
      eval_loss=float(ev["loss"]), eval_accuracy=float(ev["accuracy"]),
      train_tokens=int(train_rows.size), tokens_per_sec=last.get(
          "tokens_per_sec", previous.get("tokens_per_sec")),
      train_seconds=round(train_seconds, 1) if tokens_seen else previous.get("train_seconds"),
      devices=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      sample_prompt=config.sample.prompt,
      sample=tok.decode(out.tokens), model_dir=str(export), **qa)
  if jax.process_index() == 0:
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
  return summary
