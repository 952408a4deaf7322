"""Reading a chapter about new people into a model that already knows others
(``task.name='biography_reading'``): the episodes of meta-learned reading.

The world is the one a knowledge-storage pretraining run (``experiments/configs/lm/
knowledge.py``, corpus ``knowledge``) was trained on: :func:`metalearn.lm.biography_book.people`
of ``seed``, whose first ``known_people`` the base model read, with the questions of the first
``qa_fraction`` of them trained on too. The people after those are new; they are grouped into
chapters of ``people_per_chapter``, each biography written as the augmentation options say;
with ``prerequisites`` each has a mentor from an earlier chapter (:func:`world`), so the order
chapters are read in matters (a teacher over chapters: ``metalearn/reproductions/
textbook_teacher.py``). A task is one new chapter:

* the support set (what a fine-tuning learner reads, row by row in order) is the chapter's
  biographies, with replayed rows interleaved evenly so that ``replay_share`` of the rows are
  old text: the trained questions of known people (question, answer, end of text, packed into
  rows of the biographies' length), drawn per episode;
* the query set is ``num_query`` of the chapter's questions (all, by default), followed by
  ``num_known`` questions about known people whose questions were not trained on and are not
  replayed: the forgetting probe. Each split probes its own third of those people
  (:func:`probe_splits`): a reader meta-trained on the train split's probe (its query loss
  weighs it) could otherwise learn the answers the test split's probe asks. Answers alone are
  scored.

Metrics (:meth:`ReadingFamily.metrics`): ``answer_accuracy`` (exact answers on the new people:
the primary metric), ``token_accuracy`` and ``new_loss`` on them; ``known_accuracy`` and
``known_loss`` on the probe; ``loss`` over all query rows, the probe's answer tokens weighted
by ``known_weight`` (what a learner's query loss is, so a meta-objective on it rewards learning
the new people without losing the known ones; a weight above 1 prices forgetting higher, a
fixed multiplier on the forgetting limit's side of the trade). With ``known_limit`` the query
loss is a hinge instead: the new questions' loss plus ``known_weight`` times the probe's loss
above the limit, so forgetting costs nothing until the probe's loss passes it (set it to the
base model's probe loss plus the rise allowed: a constraint rather than a price).

Chapters are split by index: ``num_chapters`` for ``train``, then ``eval_chapters`` each for
``validation`` and ``test``. Text is tokenised once on the host with ``tokenizer`` (the base
model's directory: its ``tokenizer.json``) or one token per byte.

The family built is a book (:class:`ReadingBook`): ``book_chapters`` distinct chapters read in
order, ``steps_per_chapter`` steps of ``rows_per_step`` rows each, so the textbook evaluator
(``eval.name='textbook'``) gives the forgetting matrix R[s, c] (chapter ``c``'s questions after
reading chapter ``s``), forward transfer and the probe along the book; learners of single
chapters take its ``episodes`` view, the chapters themselves.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metalearn.lm import biography_book as bb
from metalearn.registry import ConfigError, Option
from metalearn.tasks.base import TASKS, BookFamily, Episode, TaskSpec
from metalearn.tasks.biographies import (TokenEpisodes, answer_metrics, check_num_query,
                                         load_tokenizer, pad_rows, question_row, token_kl,
                                         token_loss)

SPLITS = ("train", "validation", "test")


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["support_x", "support_y", "replay_x", "replay_y", "query_x",
                                "query_y", "known_x", "known_y"],
                   meta_fields=["num_query", "num_known", "order", "vocab_size",
                                "known_weight", "known_limit", "known_kl"])
@dataclasses.dataclass(frozen=True)
class ReadingFamily(TokenEpisodes):
  """Chapters of new people, replayed rows and a forgetting probe (the module docstring).

  Attributes:
    support_x, support_y: ``int32 [chapters, R, L]``: each chapter's biographies.
    replay_x, replay_y: ``int32 [pool, L]``: packed trained questions of known people.
    query_x, query_y: ``int32 [chapters, Q, Lq]``: each chapter's questions.
    known_x, known_y: ``int32 [probe, Lq]``: questions about known people (never trained on).
    num_query: new questions per episode (at most ``Q``).
    num_known: probe questions per episode.
    order: the support rows' order: indices into the chapter's ``R`` rows followed by the
      episode's replayed rows (``len(order) - R`` of them).
    vocab_size: the tokenizer's ids.
    known_weight: the probe's answer tokens' weight in :meth:`loss` (the new ones weigh 1).
    known_limit: when positive, :meth:`loss` is a hinge on the probe instead: the new
      questions' loss plus ``known_weight`` times the probe's loss above this many nats.
    known_kl: the probe's term in :meth:`loss` is the KL divergence of the reader's answer
      distributions from the base model's (``reference``), not the answers' loss: a reader
      cannot lower it by learning the probe's answers (a meta-learned initialisation does
      just that with the loss, then forgets everyone else), only keep it by not changing
      them. Weighted and limited as above; :meth:`metrics`' ``loss`` stays the answers'.
  """
  support_x: jax.Array
  support_y: jax.Array
  replay_x: jax.Array
  replay_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  known_x: jax.Array
  known_y: jax.Array
  num_query: int
  num_known: int
  order: tuple[int, ...]
  vocab_size: int
  known_weight: float = 1.0
  known_limit: float = 0.0
  known_kl: bool = False

  @property
  def wants_reference(self) -> bool:
    return self.known_kl

  @property
  def num_chapters(self) -> int:
    return self.support_x.shape[0]

  @property
  def num_replayed(self) -> int:
    return len(self.order) - self.support_x.shape[1]

  def sample(self, key: jax.Array) -> Episode:
    """A chapter drawn uniformly: :meth:`chapter_episode`."""
    k_chapter, k_episode = jax.random.split(key)
    return self.chapter_episode(jax.random.randint(k_chapter, (), 0, self.num_chapters),
                                k_episode)

  def chapter_episode(self, c: jax.Array, key: jax.Array) -> Episode:
    """Chapter ``c``: its questions in random order, replayed rows and probe questions drawn
    without replacement."""
    c = jnp.asarray(c, jnp.int32)
    k_questions, k_replay, k_known = jax.random.split(key, 3)
    q = jax.random.permutation(k_questions, self.query_x.shape[1])[:self.num_query]
    r = jax.random.permutation(k_replay, self.replay_x.shape[0])[:self.num_replayed]
    k = jax.random.permutation(k_known, self.known_x.shape[0])[:self.num_known]
    order = jnp.asarray(self.order, jnp.int32)
    support_x = jnp.concatenate([self.support_x[c], self.replay_x[r]])[order]
    support_y = jnp.concatenate([self.support_y[c], self.replay_y[r]])[order]
    query_x = jnp.concatenate([self.query_x[c][q], self.known_x[k]])
    query_y = jnp.concatenate([self.query_y[c][q], self.known_y[k]])
    return Episode(support_x, support_y, query_x, query_y,
                   {"chapter": c, "questions": q, "replayed": r, "known": k})

  def loss(self, predictions: jax.Array, targets: jax.Array,
           reference: jax.Array | None = None) -> jax.Array:
    """:func:`token_loss` over every query row, new and known, the probe's rows (those after
    ``num_query``) weighted by ``known_weight``; with ``known_limit``, the new rows' loss plus
    ``known_weight * max(0, probe loss - known_limit)`` (forgetting is free up to the limit).
    With ``known_kl`` the probe's term is :func:`token_kl` from ``reference`` (the base
    model's logits on the same rows): the new rows' loss plus ``known_weight`` times it (or
    its excess over ``known_limit``)."""
    if self.known_kl and reference is None:
      raise ValueError("task.known_kl: the probe's term is the KL from the base model's "
                       "predictions, and this learner supplies none (learner "
                       "'lora_finetune' does)")
    return self._loss(predictions, targets, reference if self.known_kl else None)

  def _loss(self, predictions: jax.Array, targets: jax.Array,
            reference: jax.Array | None) -> jax.Array:
    """:meth:`loss`, its probe's term the KL from ``reference`` if given, else the answers'
    loss (:meth:`metrics`' ``loss``, whatever ``known_kl`` says)."""
    n = self.num_query
    if reference is None and self.known_limit <= 0:  # one weighted mean over every row
      rows = jnp.arange(targets.shape[-2]) >= n
      weights = jnp.where(rows[:, None], self.known_weight, 1.0).astype(jnp.float32)
      return token_loss(predictions, targets, jnp.broadcast_to(weights, targets.shape))
    probe = (token_loss(predictions[..., n:, :, :], targets[..., n:, :]) if reference is None
             else token_kl(predictions[..., n:, :, :], reference[..., n:, :, :],
                           targets[..., n:, :]))
    if self.known_limit > 0:
      probe = jax.nn.relu(probe - self.known_limit)
    return (token_loss(predictions[..., :n, :, :], targets[..., :n, :])
            + self.known_weight * probe)

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """The module docstring's metrics; rows after ``num_query`` are the probe's."""
    n = self.num_query
    new = answer_metrics(predictions[:n], targets[:n])
    out = {"loss": self._loss(predictions, targets, None),
           "answer_accuracy": new["answer_accuracy"],
           "token_accuracy": new["token_accuracy"], "new_loss": new["loss"]}
    if self.num_known:
      known = answer_metrics(predictions[n:], targets[n:])
      out.update(known_accuracy=known["answer_accuracy"], known_loss=known["loss"])
    return out


@functools.partial(jax.tree_util.register_dataclass, data_fields=["chapters"],
                   meta_fields=["num_chapters", "exercises_per_chapter", "rows_per_step",
                                "ordered"])
@dataclasses.dataclass(frozen=True)
class ReadingBook(BookFamily):
  """Books of ``num_chapters`` distinct chapters of new people, read in order (the textbook
  evaluator's forgetting matrix at LM scale).

  A book's exercise ``t = c * E + e`` is ``rows_per_step`` of chapter ``c``'s support rows
  (its biographies and replayed rows, cycled in order: the rows a reader of the chapter alone
  takes at its step ``e``); chapter ``c``'s queries are its :class:`ReadingFamily` episode's,
  so every chapter's metrics carry the probe's too (``known_accuracy`` after reading chapter
  ``s``: what the known people lose along the book).

  Attributes:
    chapters: the split's :class:`ReadingFamily` (also the ``episodes`` view).
    num_chapters: C, chapters per book.
    exercises_per_chapter: E, reading steps per chapter.
    rows_per_step: rows per exercise.
    ordered: the first ``num_chapters`` chapters in their order (a textbook's), instead of
      distinct chapters in a random order.
  """
  chapters: ReadingFamily
  num_chapters: int
  exercises_per_chapter: int
  rows_per_step: int
  ordered: bool = False

  @property
  def num_steps(self) -> int:
    return self.num_chapters * self.exercises_per_chapter

  @property
  def input_shape(self) -> tuple[int, ...]:
    return self.chapters.input_shape

  @property
  def output_dim(self) -> int:
    return self.chapters.output_dim

  @property
  def primary_metric(self) -> str:
    return self.chapters.primary_metric

  def sample(self, key: jax.Array) -> Episode:
    """``num_chapters`` distinct chapters of the split in random order, or the first ones in
    order (``ordered``; see the class)."""
    k_order, k_chapters = jax.random.split(key)
    picked = jax.random.permutation(k_order, self.chapters.num_chapters)[:self.num_chapters]
    if self.ordered:
      picked = jnp.arange(self.num_chapters)
    episodes = jax.vmap(self.chapters.chapter_episode)(
        picked, jax.random.split(k_chapters, self.num_chapters))
    rows = len(self.chapters.order)
    take = (jnp.arange(self.exercises_per_chapter)[:, None] * self.rows_per_step
            + jnp.arange(self.rows_per_step)[None, :]) % rows  # [E, b]
    exercises = lambda a: a[:, take].reshape((self.num_steps, self.rows_per_step)
                                             + a.shape[2:])
    return Episode(exercises(episodes.support_x), exercises(episodes.support_y),
                   episodes.query_x, episodes.query_y,
                   {"chapters": picked, "chapter_of_step": jnp.repeat(
                       jnp.arange(self.num_chapters, dtype=jnp.int32),
                       self.exercises_per_chapter)})

  @property
  def wants_reference(self) -> bool:
    return self.chapters.wants_reference

  def loss(self, predictions: jax.Array, targets: jax.Array,
           reference: jax.Array | None = None) -> jax.Array:
    return self.chapters.loss(predictions, targets, reference)

  def metrics(self, predictions: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    return self.chapters.metrics(predictions, targets)

  def single_chapter_family(self) -> ReadingFamily:
    return self.chapters


def interleave(reading: int, replayed: int) -> tuple[int, ...]:
  """Row order spreading ``replayed`` rows (indices ``reading..``) evenly among ``reading``
  ones: row ``i`` of a kind sits at ``(i + 1/2) / count`` of the way, reading rows first on
  ties."""
  keys = [((i + 0.5) / reading, 0, i) for i in range(reading)]
  keys += [((j + 0.5) / replayed, 1, reading + j) for j in range(replayed)]
  return tuple(index for _, _, index in sorted(keys))


def num_replayed(reading: int, share: float) -> int:
  """Replayed rows making ``share`` of a support set of ``reading`` rows plus them."""
  return int(round(reading * share / (1.0 - share)))


def probe_splits(probe: list) -> list[list]:
  """The known people whose questions were not trained on (``probe``), in three disjoint
  parts: the forgetting probes of ``train``, ``validation`` and ``test`` (:data:`SPLITS`), so
  meta-training never fits the answers a held-out evaluation asks."""
  return [[probe[i] for i in part]
          for part in np.array_split(np.arange(len(probe)), len(SPLITS))]


def world(t) -> dict:
  """The people of task config ``t``: ``trained`` (the base model's people whose questions were
  trained on) and ``probe`` (the others; ``probes[split]``: each split's part of them, see
  :func:`probe_splits`), and the new people's chapters by split. With
  ``prerequisites`` every new person has a mentor: for a split's first chapter one of the
  ``trained`` people (whom the base model knows), for a later chapter someone from an earlier
  chapter of the same split (so reading that chapter first answers ``mentor_city``)."""
  total = t.num_chapters + 2 * t.eval_chapters
  everyone = bb.people(t.known_people + total * t.people_per_chapter, t.seed)
  known, new = everyone[:t.known_people], everyone[t.known_people:]
  n_trained = int(round(t.known_people * t.qa_fraction))
  rng = np.random.RandomState(t.seed + 3)
  mentors = np.random.RandomState(t.seed + 5)  # its own stream: the rest is as without them
  aug = bb.Augmentation(t.multiplicity, t.permute, t.fullname)
  starts = (0, t.num_chapters, t.num_chapters + t.eval_chapters)
  chapters = []
  for c in range(total):
    group = tuple(new[c * t.people_per_chapter:(c + 1) * t.people_per_chapter])
    if t.prerequisites:
      start = max(s for s in starts if s <= c)
      pool = (known[:n_trained] if c == start
              else new[start * t.people_per_chapter:c * t.people_per_chapter])
      group = tuple(dataclasses.replace(p, mentor=pool[mentors.randint(len(pool))])
                    for p in group)
    bios = tuple(b for p in group for b in bb.biographies(p, aug, rng))
    chapters.append(bb.Chapter(group, bios, tuple(q for p in group for q in bb.questions(p))))
  probe = known[n_trained:]
  return {"trained": known[:n_trained], "probe": probe,
          "probes": dict(zip(SPLITS, probe_splits(probe))),
          "train": chapters[:t.num_chapters],
          "validation": chapters[t.num_chapters:t.num_chapters + t.eval_chapters],
          "test": chapters[t.num_chapters + t.eval_chapters:]}


def pack_questions(tok, qas: list[bb.QA], length: int) -> list[list[int]]:
  """Rows of at most ``length + 1`` tokens: a BOS, then whole ``question answer<eos>`` texts
  (the pretraining corpus's documents) in order."""
  rows, row = [], [tok.bos_id] if tok.bos_id is not None else []
  start = len(row)
  for qa in qas:
    ids = tok.encode(qa.text, eos=True)
    if len(ids) + start > length + 1:
      raise ConfigError(f"a replayed question takes {len(ids)} tokens, over the rows' "
                        f"{length}: raise task.max_len")
    if len(row) + len(ids) > length + 1:
      rows.append(row)
      row = row[:start]
    row = row + ids
  if len(row) > start:
    rows.append(row)
  return rows


def build_family(t, split: str) -> ReadingBook:
  """The family of task config ``t`` on ``split``: books of its chapters, whose
  ``episodes`` view is the chapters themselves."""
  if split not in SPLITS:
    raise ConfigError(f"task 'biography_reading' has splits {SPLITS}, not {split!r} "
                      "(eval.split)")
  w = world(t)
  chapters = w[split]
  tok = load_tokenizer(t.tokenizer)
  pad = tok.pad_id if tok.pad_id is not None else 0
  reading = [(tok.encode(b, bos=True), 0) for ch in chapters for b in ch.biographies]
  longest = max(len(ids) - 1 for ids, _ in reading)
  if t.max_len and longest > t.max_len:
    raise ConfigError(f"task.max_len={t.max_len}: a biography takes {longest} tokens with this "
                      "tokenizer; raise max_len (0: the longest)")
  length = t.max_len or longest
  sx, sy = pad_rows(reading, length, pad)
  trained = [q for p in w["trained"] for q in bb.questions(p)]
  np.random.RandomState(t.seed + 4).shuffle(trained)
  rx, ry = pad_rows([(ids, 0) for ids in pack_questions(tok, trained, length)], length, pad)
  questions = [question_row(tok, qa.question, qa.answer) for ch in chapters for qa in ch.qa]
  probe = [question_row(tok, qa.question, qa.answer) for p in w["probes"][split]
           for qa in bb.questions(p)]
  lq = max(len(ids) - 1 for ids, _ in questions + probe)
  qx, qy = pad_rows(questions, lq, pad)
  kx, ky = pad_rows(probe, lq, pad)
  n, per = len(chapters), len(chapters[0].biographies)
  if t.num_query > len(chapters[0].qa):
    raise ConfigError(f"task.num_query={t.num_query}: a chapter has {len(chapters[0].qa)} "
                      "questions; at most that")
  shape = lambda a: jnp.asarray(a.reshape(n, a.shape[0] // n, -1))
  replayed = num_replayed(per, t.replay_share)
  if replayed > rx.shape[0]:
    raise ConfigError(f"task.replay_share={t.replay_share} needs {replayed} replayed rows per "
                      f"chapter; the known people's questions fill {rx.shape[0]}: a lower share")
  if t.book_chapters > n:
    raise ConfigError(f"task.book_chapters={t.book_chapters}: the {split} split has {n} "
                      "chapters; at most that")
  chapters = ReadingFamily(shape(sx), shape(sy), jnp.asarray(rx), jnp.asarray(ry), shape(qx),
                           shape(qy), jnp.asarray(kx), jnp.asarray(ky), t.num_query,
                           t.num_known, interleave(per, replayed), tok.vocab_size,
                           float(t.known_weight), float(t.known_limit), bool(t.known_kl))
  return ReadingBook(chapters, t.book_chapters, t.steps_per_chapter, t.rows_per_step)


def _check(config) -> None:
  t = config.task
  n_trained = int(round(t.known_people * t.qa_fraction))
  people = (t.known_people - n_trained) // len(SPLITS)  # probe_splits' smallest part
  if t.num_known > people * len(bb.ATTRIBUTES):
    raise ConfigError(f"task.num_known={t.num_known}: the {t.known_people - n_trained} known "
                      "people whose questions were not trained on are split three ways (a "
                      f"probe per split); the smallest part, {people} people, has "
                      f"{people * len(bb.ATTRIBUTES)} questions: at most that")
  if t.known_limit > 0 and t.num_known == 0:
    raise ConfigError(f"task.known_limit={t.known_limit} bounds the forgetting probe's loss, "
                      "and task.num_known=0 asks no probe questions: set num_known or "
                      "known_limit=0")
  if t.known_kl:
    from metalearn.learners import LEARNERS  # pylint: disable=g-import-not-at-top
    if t.num_known == 0:
      raise ConfigError("task.known_kl measures the forgetting probe, and task.num_known=0 "
                        "asks no probe questions: set num_known or known_kl=False")
    if "base_reference" not in LEARNERS.get(config.learner.name, "learner.name").provides:
      fit = [s.name for s in LEARNERS.specs() if "base_reference" in s.provides]
      raise ConfigError(f"task.known_kl needs the base model's predictions, which learner "
                        f"{config.learner.name!r} does not give its loss: a learner of {fit} "
                        "or known_kl=False")
  if t.prerequisites and n_trained == 0:
    raise ConfigError("task.prerequisites: a split's first chapter takes its mentors from the "
                      "known people whose questions were trained on, and task.qa_fraction of "
                      "task.known_people rounds to 0")
  if t.replay_share > 0 and n_trained == 0:
    raise ConfigError(f"task.replay_share={t.replay_share} with no trained questions to replay "
                      "(task.qa_fraction of task.known_people rounds to 0)")
  if t.book_chapters > min(t.num_chapters, t.eval_chapters):
    raise ConfigError(f"task.book_chapters={t.book_chapters}: a book takes distinct chapters "
                      f"of one split (train {t.num_chapters}, validation and test "
                      f"{t.eval_chapters} each); at most {min(t.num_chapters, t.eval_chapters)}")
  per_person = len(bb.ATTRIBUTES) + (len(bb.RELATIONS) if t.prerequisites else 0)
  check_num_query(config, t.people_per_chapter * per_person)


TASKS.register(TaskSpec(
    name="biography_reading", doc="read a chapter about new people into a model that knows "
    "others; answer about both",
    build=build_family, kinds=("book", "episodes"), target="tokens", inputs="sequence",
    evaluator="few_shot", check=_check,
    eval_defaults=dict(num_query=24),
    options=dict(
        known_people=Option(300, ge=1, doc="people the base model was pretrained on (the "
                            "knowledge corpus's corpus.num_people)"),
        qa_fraction=Option(0.5, ge=0, le=1, doc="the share of them whose questions it was "
                           "trained on (corpus.qa_fraction): replayed; the rest are probed"),
        num_chapters=Option(50, ge=1, doc="chapters of new people in the train split"),
        eval_chapters=Option(10, ge=1, doc="chapters of each of validation and test"),
        people_per_chapter=Option(4, ge=1, doc="new people a chapter is about"),
        multiplicity=Option(5, ge=1, doc="biographies per new person, each written afresh"),
        permute=Option(True, doc="sentences in a random order"),
        fullname=Option(True, doc="the full name in every sentence (else the first only)"),
        prerequisites=Option(False, doc="every new person has a mentor from an earlier chapter "
                             "of the split (the first chapter's: a known person), asked about "
                             "in two more questions (world())"),
        replay_share=Option(0.0, ge=0, lt=1, doc="the share of support rows that replay known "
                            "people's trained questions"),
        num_query=Option(24, ge=1, doc="new questions per episode (a chapter has six per "
                         "person)"),
        num_known=Option(24, ge=0, doc="questions about known people per episode (the "
                         "forgetting probe)"),
        known_weight=Option(1.0, ge=0, doc="the probe's answer tokens' weight in the query "
                            "loss, the meta-objective's (above 1 prices forgetting higher)"),
        known_limit=Option(0.0, ge=0, doc="positive: the query loss is the new questions' "
                           "plus known_weight times the probe's loss above this many nats "
                           "(a hinge: the base's probe loss plus the rise allowed; 0: off)"),
        known_kl=Option(False, doc="the probe's term in the query loss is the KL of the "
                        "reader's answer distributions from the base model's, not the "
                        "answers' loss (a learned initialisation cannot lower it by learning "
                        "the probe's answers; known_limit then in nats of KL)"),
        max_len=Option(0, ge=0, doc="support rows' length in tokens (0: the longest biography)"),
        tokenizer=Option("", doc="the base model's directory, with tokenizer.json ('': one "
                         "token per byte)"),
        book_chapters=Option(4, ge=1, doc="chapters per book (the textbook evaluator)"),
        steps_per_chapter=Option(30, ge=1, doc="a book's reading steps per chapter"),
        rows_per_step=Option(4, ge=1, doc="a book's rows per reading step"),
        seed=Option(0, ge=0, lt=2**31, doc="the pretraining run's seed (its people)"))))
