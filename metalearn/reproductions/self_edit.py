r"""Self-written study notes rewarded by what they teach (SEAL-style: Zweiger et al. 2025,
"Self-Adapting Language Models"), on the biography world of meta-learned reading.

A base model that knows ``task.known_people`` people (``meta_reading.py``'s world) meets people
it never saw. For one of them the **writer** (the base model with a LoRA of its own, sampled
and trained through the Tinker-shaped client, :mod:`metalearn.tinker`) reads one of their
biographies followed by their full name (the prompt: a biography ends its document, so the
name opens a new sentence about them; the biography is cut where the model's context is
shorter than it, the name and a sentence) and continues it with a sentence of at most
``max_tokens`` tokens, stopping at the end-of-text token. A note is ``sentences`` such
sentences, sampled independently from the same prompt (a model pretrained on biographies
ends its document after one more sentence, so one continuation is one fact); the note
studied is each sentence opened by the name, in order, cut to the model's context. What a
note teaches is measured by the **reader**: a fresh LoRA on the base model fine-tuned on the
note alone for ``learner.num_inner_steps`` steps (the config's Adam at ``learner.init_lr``, as
meta-reading's baseline reads), then asked that person's six questions. A note's **reward** is
the drop of the answer loss on them (before reading -> after); exact answers are reported
beside it.

**ReST-EM** (the expectation-maximisation form of RL SEAL trains with): each iteration samples
``samples`` notes for each of ``people`` training people, keeps each person's best note if its
reward is positive, and fine-tunes the writer on the kept (prompt, sentence) pairs with
``cross_entropy`` on the sentence's tokens (``forward_backward`` + ``optim_step``, ``sft_steps``
times). The bar: the mean reward of the sampled notes rises over iterations.

**Warm start** (``warm_start`` steps, 0: none): before the first iteration the writer is
fine-tuned to restate, on (prompt, sentence) pairs whose sentence comes from the person's other
biography (:func:`restatements`; that biography is the ``restated`` input), ``people``
training people per step. ReST-EM then starts from a writer whose sentences carry the
person's facts rather than from the base model's continuations. Its notes are compared too.

**Inputs compared** on the test people, each read by the same reader for the same steps:
``biography`` (the prompt itself: what the chapter says), ``restated`` (another of the
person's biographies, in fresh templates: knowledge-storage augmentation), ``qa`` (the six
facts as question-answer pairs: the format asked, a reference), and the notes of the writer
before and after training (``samples`` per person).

Everything is a function of the config and the seed: the people, the prompts, the sampling
seeds, the writer's LoRA initialisation.
"""

import dataclasses
import json
import pathlib
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tinker import types

from metalearn import config as config_lib
from metalearn import evaluators, plots, reporting
from metalearn import experiment as experiment_lib
from metalearn.lm import biography_book as bb
from metalearn.reproductions.progress import mean_ci
from metalearn.tasks import Episode
from metalearn.tasks import biography_reading
from metalearn.tasks.biographies import answer_metrics, load_tokenizer, pad_rows, question_row

INPUTS = ("biography", "restated", "qa", "notes (untrained writer)", "notes (trained writer)")
WARM = "notes (warm-started writer)"  # an input when Options.warm_start > 0


@dataclasses.dataclass(frozen=True)
class Options:
  """The writer's loop (see the module docstring)."""
  iterations: int = 10
  people: int = 8
  samples: int = 4
  max_tokens: int = 48
  sentences: int = 1
  temperature: float = 1.0
  writer_rank: int = 8
  writer_lr: float = 1e-3
  sft_steps: int = 2
  warm_start: int = 0

  def __post_init__(self):
    for name in ("iterations", "people", "samples", "max_tokens", "sentences", "writer_rank",
                 "sft_steps"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)}: at least 1")
    if self.warm_start < 0:
      raise ValueError(f"warm_start={self.warm_start}: at least 0 (0: no warm start)")
    if not (self.temperature > 0 and self.writer_lr > 0):
      raise ValueError("temperature and writer_lr: above 0")


@dataclasses.dataclass(frozen=True)
class World:
  """The split's new people with their prompt (a biography), another biography and their
  questions as padded rows ``qx, qy [P, 6, Lq]``."""
  people: tuple
  prompts: tuple  # biography texts
  restated: tuple
  qx: np.ndarray
  qy: np.ndarray


def world(config: ml_collections.ConfigDict, split: str, tok) -> World:
  """The new people of ``split`` (every chapter's, in order)."""
  t = config.task
  chapters = biography_reading.world(t)[split]
  people, prompts, restated = [], [], []
  for ch in chapters:
    for i, p in enumerate(ch.people):
      bios = ch.biographies[i * t.multiplicity:(i + 1) * t.multiplicity]
      people.append(p)
      prompts.append(bios[0])
      restated.append(bios[1])
  rows = [question_row(tok, qa.question, qa.answer) for p in people for qa in bb.questions(p)]
  lq = max(len(ids) - 1 for ids, _ in rows)
  qx, qy = pad_rows(rows, lq, tok.pad_id if tok.pad_id is not None else 0)
  per = len(bb.questions(people[0]))
  return World(tuple(people), tuple(prompts), tuple(restated),
               qx.reshape(len(people), per, lq), qy.reshape(len(people), per, lq))


def qa_text(person) -> str:
  """The ``qa`` input: the person's facts as question-answer pairs, one text."""
  return " ".join(qa.text for qa in bb.questions(person))


def make_reader(learner, theta, num_steps: int):
  """``read(sx, sy, qx, qy) -> (before, after)``: for each of ``B`` study rows
  (``sx, sy [B, 1, L]``), a fresh reader's answer metrics on its person's questions
  (``qx, qy [B, Q, Lq]``) before and after ``num_steps`` steps on the row (jitted)."""

  def one(sx, sy, qx, qy):
    episode = Episode(sx, sy, qx, qy, {})
    start = learner.init_state(theta, episode)
    end = jax.lax.fori_loop(0, num_steps, lambda _, s: learner.step(theta, s, episode), start)
    return (answer_metrics(learner.predict(theta, start, qx), qy),
            answer_metrics(learner.predict(theta, end, qx), qy))

  return jax.jit(jax.vmap(one))


def study_rows(tok, texts_or_ids, length: int):
  """``sx, sy [B, 1, length]``: each study text (after BOS), or token ids as given, as one
  row, cut to ``length`` tokens."""
  rows = []
  for item in texts_or_ids:
    ids = tok.encode(item, bos=True) if isinstance(item, str) else list(item)
    rows.append((ids[:length + 1], 0))
  x, y = pad_rows(rows, length, tok.pad_id if tok.pad_id is not None else 0)
  return x[:, None], y[:, None]


def reward(before: dict, after: dict) -> np.ndarray:
  """The loss drop on the person's questions, per note."""
  return np.asarray(before["loss"], float) - np.asarray(after["loss"], float)


def _sentence_ids(tokens, eos: int | None) -> list[int]:
  ids = [int(i) for i in tokens]
  return ids[:ids.index(eos) + 1] if eos is not None and eos in ids else ids


def prompt_ids(tok, biography: str, name: str, limit: int) -> list[int]:
  """The writer's prompt: BOS, the biography (cut so the whole fits ``limit`` tokens), then
  the person's name opening a new sentence."""
  tail = tok.encode(" " + name)
  return tok.encode(biography, bos=True)[:limit - len(tail)] + tail


def note_row(tok, name: str, note) -> list[int]:
  """What the reader studies: BOS, then each of the note's sentences (token ids) opened by
  the name; an end-of-text token ends the row only if the last sentence sampled one."""
  row, again = tok.encode(name, bos=True), tok.encode(" " + name)
  for k, sentence in enumerate(note):
    ids = list(sentence)
    if k < len(note) - 1 and ids and ids[-1] == tok.eos_id:
      ids = ids[:-1]
    row += (again if k else []) + ids
  return row


def sample_notes(sampler, tok, prompts, opts: Options, seed: int
                 ) -> list[list[tuple[list[int], ...]]]:
  """``opts.samples`` notes per prompt (``prompt_ids``), each ``opts.sentences`` sentences
  (token ids, each ending at the end-of-text token if it was sampled) from one sampling call
  per prompt, seeded by ``seed`` and the prompt's index."""
  params = lambda i: types.SamplingParams(
      max_tokens=opts.max_tokens, temperature=opts.temperature, seed=seed * 100_003 + i,
      stop=[tok.eos_id] if tok.eos_id is not None else None)
  out = []
  for i, ids in enumerate(prompts):
    prompt = types.ModelInput.from_ints(ids)
    seqs = sampler.sample(prompt, opts.samples * opts.sentences, params(i)).result().sequences
    sentences = [_sentence_ids(s.tokens, tok.eos_id) for s in seqs]
    out.append([tuple(sentences[j * opts.sentences:(j + 1) * opts.sentences])
                for j in range(opts.samples)])
  return out


def sft_datum(prompt: list[int], sentence: list[int]) -> types.Datum:
  """The writer's training example: the prompt's ids, then one sentence of a note, scored
  on the sentence only."""
  ids = list(prompt) + list(sentence)
  weights = [0.0] * (len(ids) - 1 - len(sentence)) + [1.0] * len(sentence)
  return types.Datum(model_input=types.ModelInput.from_ints(ids[:-1]),
                     loss_fn_inputs={"target_tokens": ids[1:], "weights": weights})


def restatements(tok, biography: str, name: str) -> list[list[int]]:
  """The warm start's sentences: each sentence of ``biography`` that opens with ``name``, as
  the writer would continue its prompt (the text after the name, then end of text). A
  biography's sentences each open with the full name (``task.fullname``)."""
  out = []
  for part in biography.split(name)[1:]:
    text = part.rstrip()
    if text:
      out.append(tok.encode(text) + ([tok.eos_id] if tok.eos_id is not None else []))
  return out


def select(rewards: np.ndarray) -> list[tuple[int, int]]:
  """ReST-EM's E-step: ``(person, sample)`` of each person's best note, if its reward is
  positive (``rewards [P, S]``)."""
  best = np.argmax(rewards, axis=1)
  return [(p, int(s)) for p, s in enumerate(best) if rewards[p, s] > 0]


def _read_notes(read, tok, notes, w: World, idx, length):
  flat = [note_row(tok, w.people[i].name, n) for i, person in zip(idx, notes) for n in person]
  sx, sy = study_rows(tok, flat, length)
  s = len(notes[0])
  qx = np.repeat(w.qx[idx], s, axis=0)
  qy = np.repeat(w.qy[idx], s, axis=0)
  before, after = jax.tree.map(np.asarray, read(sx, sy, qx, qy))
  shape = lambda a: np.asarray(a, float).reshape(len(notes), s)
  return ({k: shape(v) for k, v in before.items()}, {k: shape(v) for k, v in after.items()})


def run_seed(config: ml_collections.ConfigDict, opts: Options, seed: int,
             workdir: pathlib.Path) -> dict:
  """One seed: the writer's ReST-EM iterations and the inputs compared on the test people.
  Iterations already in ``workdir/iterations.jsonl`` with the writer's state saved are not
  redone."""
  from metalearn.tinker.client import ServiceClient  # pylint: disable=g-import-not-at-top
  workdir.mkdir(parents=True, exist_ok=True)
  tok = load_tokenizer(config.task.tokenizer)
  exp = experiment_lib.build(config)
  theta = {"lr": jnp.log(jnp.float32(config.learner.init_lr))}
  read = make_reader(exp.learner, theta, config.learner.num_inner_steps)
  train, test = world(config, "train", tok), world(config, config.eval.split, tok)
  longest = max(len(tok.encode(b, bos=True)) for b in train.prompts + test.prompts)
  named = max(len(tok.encode(p.name, bos=True)) for p in train.people + test.people)
  note = opts.sentences * (named + opts.max_tokens)  # a bound on a note's row
  length = min(context(config), max(longest, note, max(len(tok.encode(qa_text(p), bos=True))
                                                       for p in test.people))) - 1
  service = ServiceClient({"base": config.model.hf_dir}, root=workdir / "tinker")
  writer = service.create_lora_training_client("base", rank=opts.writer_rank, seed=seed,
                                               run_id="writer").result()
  log = workdir / "iterations.jsonl"
  done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
  if done:
    writer.load_state_with_optimizer(done[-1]["state"]).result()
    logging.info("resuming after iteration %d", done[-1]["iteration"])

  limit = context(config) - opts.max_tokens
  prompts = lambda w, idx: [prompt_ids(tok, w.prompts[i], w.people[i].name, limit)
                            for i in idx]
  everyone = np.arange(len(test.people))

  def test_notes(sampler, tag):
    notes = sample_notes(sampler, tok, prompts(test, everyone), opts,
                         10_000 * (seed + 1) + tag)
    return _read_notes(read, tok, notes, test, everyone, length)

  untrained = test_notes(service.create_sampling_client(base_model="base").result(), 0)
  rng = np.random.RandomState(seed)
  orders = [rng.permutation(len(train.people)) for _ in range(opts.iterations)]
  adam = types.AdamParams(learning_rate=opts.writer_lr)
  warm_sampler = _warm_start(writer, service, opts, seed, workdir, bool(done), train,
                             lambda idx: prompts(train, idx), tok, adam)
  warm = None if warm_sampler is None else test_notes(warm_sampler, 2)
  for it in range(len(done), opts.iterations):
    start = time.perf_counter()
    idx = orders[it][:opts.people]
    sampler = writer.save_weights_and_get_sampling_client(f"iter{it}").result()
    asked = prompts(train, idx)
    notes = sample_notes(sampler, tok, asked, opts, seed * 1_000 + it)
    before, after = _read_notes(read, tok, notes, train, idx, length)
    r = reward(before, after)
    kept = select(r)
    best = np.unravel_index(np.argmax(r), r.shape)
    data = [sft_datum(asked[p], sentence) for p, s in kept for sentence in notes[p][s]]
    for _ in range(opts.sft_steps if data else 0):
      writer.forward_backward(data, "cross_entropy").result()
      writer.optim_step(adam).result()
    state = writer.save_state(f"state{it}").result().path
    row = {"iteration": it, "reward": float(r.mean()), "reward_best": float(r.max(1).mean()),
           "accuracy_after": float(after["answer_accuracy"].mean()),
           "kept": len(kept),
           "note_tokens": float(np.mean([sum(map(len, n)) for p in notes for n in p])),
           "best_note": tok.decode(note_row(tok, train.people[idx[best[0]]].name,
                                            notes[best[0]][best[1]])),
           "seconds": time.perf_counter() - start, "state": state}
    logging.info("iteration %d: reward %.4f (best %.4f), exact after %.3f, kept %d/%d", it,
                 row["reward"], row["reward_best"], row["accuracy_after"], len(kept),
                 len(idx))
    with log.open("a") as f:
      f.write(json.dumps(row) + "\n")
    done.append(row)
  trained = test_notes(writer.save_weights_and_get_sampling_client("final").result(), 1)
  scores = {}
  for name, texts in (("biography", test.prompts), ("restated", test.restated),
                      ("qa", [qa_text(p) for p in test.people])):
    sx, sy = study_rows(tok, texts, length)
    before, after = jax.tree.map(np.asarray, read(sx, sy, test.qx, test.qy))
    scores[name] = _score(before, after)
  scores["notes (untrained writer)"] = _score(*untrained)
  if warm is not None:
    scores[WARM] = _score(*warm)
  scores["notes (trained writer)"] = _score(*trained)
  return {"seed": seed, "iterations": done, "inputs": scores,
          "test_people": len(test.people), "train_people": len(train.people)}


def _warm_start(writer, service, opts: Options, seed: int, workdir: pathlib.Path,
                resumed: bool, train: World, prompts, tok, adam):
  """The warm start (the module docstring), run once per seed and recorded in
  ``workdir/warm_start.json``; returns a sampler of the warm-started writer, or ``None``
  without one. A resumed seed reuses the record (and the writer's state, if no iteration is
  done yet)."""
  record = workdir / "warm_start.json"
  if not opts.warm_start:
    if record.exists():
      raise ValueError(f"{workdir} was run with a warm start ({record}): pass the same "
                       "--warm_start or another --workdir")
    return None
  if not record.exists():
    if resumed:
      raise ValueError(f"{workdir} holds iterations run without a warm start: pass "
                       "--warm_start=0 or another --workdir")
    start, losses = time.perf_counter(), []
    order = np.random.RandomState(seed + 7_919).permutation(len(train.people))
    for step in range(opts.warm_start):
      idx = np.take(order, np.arange(step * opts.people, (step + 1) * opts.people), mode="wrap")
      asked = prompts(idx)
      sentences = [(k, sentence) for k, i in enumerate(idx)
                   for sentence in restatements(tok, train.restated[i], train.people[i].name)]
      out = writer.forward_backward([sft_datum(asked[k], x) for k, x in sentences],
                                    "cross_entropy").result()
      writer.optim_step(adam).result()
      losses.append(out.metrics["loss:sum"] / sum(len(x) for _, x in sentences))
      logging.info("warm start %d/%d: %.4f nats per sentence token", step + 1,
                   opts.warm_start, losses[-1])
    record.write_text(json.dumps({
        "steps": opts.warm_start, "loss": losses, "seconds": time.perf_counter() - start,
        "state": writer.save_state("warm").result().path,
        "sampler": writer.save_weights_for_sampler("warm").result().path}))
  info = json.loads(record.read_text())
  if info["steps"] != opts.warm_start:
    raise ValueError(f"{workdir} was warm-started for {info['steps']} steps: pass "
                     f"--warm_start={info['steps']} or another --workdir")
  if not resumed:
    writer.load_state_with_optimizer(info["state"]).result()
  return service.create_sampling_client(model_path=info["sampler"]).result()


def _score(before: dict, after: dict) -> dict[str, float]:
  return {"accuracy_before": float(np.mean(before["answer_accuracy"])),
          "accuracy_after": float(np.mean(after["answer_accuracy"])),
          "loss_drop": float(np.mean(reward(before, after)))}


def context(config: ml_collections.ConfigDict) -> int:
  """The base model's context (positions), from its HF ``config.json``."""
  from metalearn.lm import hf  # pylint: disable=g-import-not-at-top
  return hf.read_config(config.model.hf_dir).max_position_embeddings


def check(config: ml_collections.ConfigDict, opts: Options) -> None:
  """``ValueError`` naming the fix for a config this loop cannot run (a validated
  ``meta_reading.py:SIZE,adam`` config)."""
  if tuple(config.learner.learn) != ("lr",):
    raise ValueError("the notes' reader fine-tunes at a fixed learning rate: a "
                     "meta_reading.py 'adam' config (learner.learn=('lr',))")
  if not config.model.hf_dir:
    raise ValueError("the writer samples through the Tinker client, which loads an HF "
                     "directory: set model.hf_dir (and task.tokenizer) to the base model")
  if not (pathlib.Path(config.model.hf_dir) / "config.json").exists():
    raise ValueError(f"model.hf_dir={config.model.hf_dir!r} holds no config.json (an HF "
                     "model directory)")
  if opts.max_tokens >= context(config) - 8:
    raise ValueError(f"max_tokens={opts.max_tokens} leaves the prompt fewer than 8 of the "
                     f"model's {context(config)} positions: lower it")
  if config.task.multiplicity < 2:
    raise ValueError(f"task.multiplicity={config.task.multiplicity}: 'restated' is a "
                     "person's second biography; at least 2")


def run(config: ml_collections.ConfigDict, opts: Options, seeds: int, workdir: pathlib.Path,
        out: pathlib.Path, command: str) -> dict:
  """Every seed (each in ``workdir/seed_S``); writes OUT.md / .csv / .png / .json; returns
  the summary. ``config`` is a ``meta_reading.py:SIZE,adam`` config (:func:`check`)."""
  config = config_lib.validate(config)
  check(config, opts)
  runs = [run_seed(config, opts, s, pathlib.Path(workdir) / f"seed_{s}") for s in range(seeds)]
  summary = summarise(runs)
  write(summary, runs, config, opts, out, command)
  return summary


def summarise(runs: list[dict]) -> dict:
  """Means and 95% half-widths over seeds: each input's scores, the reward per iteration,
  and the bar (the last iteration's mean reward above the first's, intervals apart)."""
  inputs = {}
  for name in runs[0]["inputs"]:
    inputs[name] = {}
    for k in runs[0]["inputs"][name]:
      inputs[name][k], inputs[name][f"{k}_ci95"] = mean_ci([r["inputs"][name][k] for r in runs])
  curve = np.array([[it["reward"] for it in r["iterations"]] for r in runs])
  mean = curve.mean(0)
  half = np.array([mean_ci(curve[:, i])[1] for i in range(curve.shape[1])])
  half = np.nan_to_num(half, nan=0.0)
  first, last = mean[0], mean[-1]
  rose = bool(last - half[-1] > first + half[0]) if len(runs) > 1 else bool(last > first)
  return {"inputs": inputs, "reward": mean.tolist(), "reward_ci95": half.tolist(),
          "seeds": len(runs), "rose": rose}


def write(summary: dict, runs: list[dict], config, opts: Options, out: pathlib.Path,
          command: str) -> None:
  out.parent.mkdir(parents=True, exist_ok=True)
  rows = [{"input": name, **values} for name, values in summary["inputs"].items()]
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  out.with_suffix(".json").write_text(json.dumps(
      {"summary": summary, "runs": runs, "options": dataclasses.asdict(opts)}))
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4))
  steps = np.arange(len(summary["reward"]))
  mean, half = np.asarray(summary["reward"]), np.asarray(summary["reward_ci95"])
  axes[0].plot(steps, mean, marker="o", color="C0", label=f"mean over {summary['seeds']} seeds")
  axes[0].fill_between(steps, mean - half, mean + half, color="C0", alpha=0.2,
                       label="95% interval")
  axes[0].set(title="reward of the sampled notes (loss drop on the person's questions)",
              xlabel="ReST-EM iteration", ylabel="reward (nats)", xticks=steps)
  axes[0].legend(fontsize=8)
  names = list(summary["inputs"])
  values = [100 * summary["inputs"][n]["accuracy_after"] for n in names]
  errors = [100 * np.nan_to_num(summary["inputs"][n]["accuracy_after_ci95"]) for n in names]
  axes[1].barh(np.arange(len(names)), values, xerr=errors, color=[f"C{i}" for i in
                                                                   range(len(names))])
  axes[1].set_yticks(np.arange(len(names)), names)
  axes[1].invert_yaxis()
  axes[1].set(title="test people's questions after reading the input",
              xlabel="exact answers (%)", xlim=(0, 100))
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=120)
  plt.close(fig)
  pct = lambda v, ci: f"{100 * v:.1f}" + ("" if ci != ci else f" ± {100 * ci:.1f}")
  num = lambda v, ci: f"{v:.3f}" + ("" if ci != ci else f" ± {ci:.3f}")
  t = config.task
  lines = [
      "# Self-written study notes rewarded by what they teach (ReST-EM)", "",
      f"A decoder LM pretrained on {t.known_people} people "
      f"(`{reporting.short_path(config.model.hf_dir)}`) writes a note of {opts.sentences} "
      f"sentence{'s' if opts.sentences > 1 else ''}, each a continuation of one biography of a "
      f"person it never saw and its name (at most {opts.max_tokens} tokens, temperature "
      f"{opts.temperature:g}), each opened by the name; a fresh LoRA reader (rank {config.learner.rank}, Adam "
      f"{config.learner.init_lr:g}) reads the note alone for {config.learner.num_inner_steps} "
      "steps and is asked the person's six questions; the reward is the drop of their answer "
      f"loss. ReST-EM: {opts.iterations} iterations of {opts.samples} notes for each of "
      f"{opts.people} training people, each person's best note kept if its reward is "
      f"positive, the writer (LoRA rank {opts.writer_rank}) fine-tuned on them for "
      f"{opts.sft_steps} steps at {opts.writer_lr:g}" + (
          f", after a warm start of {opts.warm_start} steps restating {opts.people} training "
          "people's other biographies per step" if opts.warm_start else "") +
      f". Mean over {summary['seeds']} seeds ± 95% interval (Student t).", "",
      f"## Which input teaches best ({runs[0]['test_people']} `{config.eval.split}` people)", "",
      "| input read | exact answers before | after | loss drop |", "|---|---|---|---|"]
  for name, v in summary["inputs"].items():
    lines.append(f"| {name} | {pct(v['accuracy_before'], v['accuracy_before_ci95'])} | "
                 f"{pct(v['accuracy_after'], v['accuracy_after_ci95'])} | "
                 f"{num(v['loss_drop'], v['loss_drop_ci95'])} |")
  best = max(summary["inputs"], key=lambda n: (summary["inputs"][n]["accuracy_after"],
                                               summary["inputs"][n]["loss_drop"]))
  lines += ["", f"Teaches best (exact answers, then loss drop): **{best}**. `qa` is the questions' own format, a reference "
            "rather than a study method.", "",
            "## The reward over iterations", "",
            "| iteration | " + " | ".join(str(i) for i in range(len(summary["reward"]))) + " |",
            "|---" * (len(summary["reward"]) + 1) + "|",
            "| reward | " + " | ".join(num(m, h) for m, h in zip(summary["reward"],
                                                              summary["reward_ci95"])) + " |",
            "", f"Bar (the reward rises: the last iteration's interval above the first's): "
            f"**{'met' if summary['rose'] else 'not met'}**.", "",
            f"Curves: `{out.with_suffix('.png').name}`; every iteration and note score: "
            f"`{out.with_suffix('.json').name}`. Hardware: {evaluators.hardware()}; "
            f"{sum(it['seconds'] for r in runs for it in r['iterations']):.0f} s of "
            "iterations in all.", "", f"Command: `{command}`", ""]
  out.with_suffix(".md").write_text("\n".join(lines))
