"""task.name='biography_reading': chapters of new people read into a model that knows others;
the world matches the knowledge corpus, the replayed rows and the probe are the known people's
(trained and untrained questions), the row order gives the replay share, and the metrics split
new from known by value."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn.lm import biography_book as bb
from metalearn.lm import pretrain
from metalearn.lm import tokenizer as tok_lib
from metalearn.registry import ConfigError
from metalearn.tasks import biography_reading as task
from metalearn.tasks.base import TASKS


def _task(**overrides):
  t = {k: o.default for k, o in TASKS.get("biography_reading").options.items()}
  t.update(known_people=10, qa_fraction=0.5, num_chapters=3, eval_chapters=2,
           people_per_chapter=2, multiplicity=2, num_query=12, num_known=6, seed=3,
           book_chapters=2, steps_per_chapter=3, rows_per_step=2)
  t.update(overrides)
  return ml_collections.ConfigDict(t)


def _text(tok, row):
  return tok.decode([int(i) for i in row if i >= 0], skip_special=True)


def test_the_world_is_the_knowledge_corpus_people_then_disjoint_chapters_of_new_ones():
  t = _task()
  w = task.world(t)
  c = ml_collections.ConfigDict(dict(seed=3, corpus=dict(num_people=10, qa_fraction=0.5,
                                                          multiplicity=1, permute=False,
                                                          fullname=False)))
  trained, test, _ = pretrain.knowledge_split(c)
  assert [q for p in w["trained"] for q in bb.questions(p)] == trained
  assert [q for p in w["probe"] for q in bb.questions(p)] == test
  # each split probes its own part of the untrained known people, all of them in all
  assert [[p.name for p in w["probes"][s]] for s in task.SPLITS] == [
      [p.name for p in w["probe"][a:b]] for a, b in ((0, 2), (2, 4), (4, 5))]
  known = {p.name for p in w["trained"] + w["probe"]}
  seen = set()
  for split in task.SPLITS:
    for ch in w[split]:
      names = {p.name for p in ch.people}
      assert len(names) == 2 and not names & known and not names & seen
      seen |= names
      for p in ch.people:  # every answer is in the person's biographies
        bios = [b for b in ch.biographies if p.name in b]
        assert len(bios) == 2
        for qa in bb.questions(p):
          assert all(qa.answer[:-1] in b for b in bios), (qa, bios)
  assert len(w["train"]) == 3 and len(w["validation"]) == len(w["test"]) == 2
  assert task.world(t)["test"] == w["test"]  # a function of the seed


def test_prerequisites_give_each_new_person_a_mentor_read_before_them():
  plain, w = task.world(_task()), task.world(_task(prerequisites=True))
  trained = {p.name for p in w["trained"]}
  for split in task.SPLITS:
    earlier = set()
    for c, (ch, ch_plain) in enumerate(zip(w[split], plain[split])):
      # the same people as without prerequisites, each with a mentor
      assert [p.name for p in ch.people] == [p.name for p in ch_plain.people]
      for p in ch.people:
        assert p.mentor.name in (trained if c == 0 else earlier), (split, c, p.name)
        assert all(p.mentor.name in b for b in ch.biographies if p.name in b)
        asked = {qa.question: qa.answer for qa in bb.questions(p)}
        assert asked[f"Where was the mentor of {p.name} born?"][:-1] == (
            p.mentor.facts["birth_city"])
      assert len(ch.qa) == 2 * (len(bb.ATTRIBUTES) + len(bb.RELATIONS))
      earlier |= {p.name for p in ch.people}
  family = task.build_family(_task(prerequisites=True, num_query=16), "test").chapters
  assert family.query_x.shape[1] == 16  # 8 questions per person
  config = ml_collections.ConfigDict({"task": _task(num_query=16), "eval": {}})
  with pytest.raises(ConfigError, match="task.num_query=16: a chapter has 12 questions"):
    task._check(config)
  config.task.prerequisites = True
  task._check(config)
  config.task.update(qa_fraction=0.0, num_known=0)
  with pytest.raises(ConfigError, match="mentors from the known people"):
    task._check(config)


def test_an_episode_reads_its_chapter_with_replay_and_asks_new_then_known():
  t = _task(replay_share=1 / 3)
  family = task.build_family(t, "validation").chapters
  w = task.world(t)
  tok = tok_lib.byte_level()
  assert family.support_x.shape[:2] == (2, 4) and family.num_replayed == 2
  assert family.order == (0, 4, 1, 2, 5, 3)  # replayed rows spread evenly
  episode = family.sample(jax.random.key(1))
  chapter = w["validation"][int(episode.info["chapter"])]
  names = [p.name for p in chapter.people]
  trained = {p.name for p in w["trained"]}
  probe = {p.name for p in w["probes"]["validation"]}  # the split's own probe
  rows = [_text(tok, r) for r in np.asarray(episode.support_x)]
  for i, text in enumerate(rows):
    if i in (1, 4):  # replayed: whole trained question-answer texts of known people
      assert "?" in text and any(n in text for n in trained), text
      assert not any(n in text for n in names + sorted(probe))
  reading = [rows[i] for i in (0, 2, 3, 5)]  # the chapter's biographies, in order
  assert all(b.startswith(r) and len(b) - len(r) == 1 for r, b in zip(reading,
                                                                         chapter.biographies))
  questions = [_text(tok, r) for r in np.asarray(episode.query_x)]
  assert len(questions) == 12 + 6
  assert all(any(n in q for n in names) for q in questions[:12])
  assert all(any(n in q for n in probe) for q in questions[12:])
  # answers alone are scored: a question row's scored targets decode to " " + its answer
  for row, q in enumerate(np.asarray(episode.info["questions"])[:3]):
    y = np.asarray(episode.query_y[row])
    assert tok.decode([int(i) for i in y if i >= 0]) == " " + chapter.qa[q].answer


def test_interleave_and_the_replay_share():
  assert task.interleave(3, 0) == (0, 1, 2)
  assert task.interleave(2, 2) == (0, 2, 1, 3)
  assert task.num_replayed(20, 0.25) == 7 and task.num_replayed(20, 0.5) == 20
  order = task.interleave(20, 7)
  assert sorted(order) == list(range(27))
  first_half = [i for i in order[:14] if i >= 20]
  assert len(first_half) in (3, 4)  # spread, not bunched at the end


def test_metrics_split_new_from_known_by_value():
  family = task.build_family(_task(), "test").chapters
  episode = family.sample(jax.random.key(0))
  y = episode.query_y
  vocab = family.vocab_size
  right = jax.nn.one_hot(jnp.maximum(y, 0), vocab) * 30.0  # every scored token right
  wrong = jax.nn.one_hot((jnp.maximum(y, 0) + 1) % vocab, vocab) * 30.0
  logits = jnp.concatenate([right[:12], wrong[12:]])  # new rows right, probe rows wrong
  m = family.metrics(logits, y)
  assert float(m["answer_accuracy"]) == 1.0 and float(m["known_accuracy"]) == 0.0
  assert float(m["new_loss"]) < 1e-3 < float(m["known_loss"])
  # the loss is over every query row: between the two halves'
  assert float(m["new_loss"]) < float(m["loss"]) < float(m["known_loss"])
  logits = jnp.concatenate([right[:11], wrong[11:]])  # one new question wrong
  assert float(family.metrics(logits, y)["answer_accuracy"]) == pytest.approx(11 / 12)


def test_known_weight_prices_the_probes_tokens_in_the_loss():
  family = task.build_family(_task(), "test").chapters
  heavy = task.build_family(_task(known_weight=4.0), "test").chapters
  y = family.sample(jax.random.key(0)).query_y
  logits = jax.random.normal(jax.random.key(1), y.shape + (family.vocab_size,))
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.maximum(y, 0)[..., None], -1)[..., 0]
  scored = y >= 0
  new, known = jnp.sum(jnp.where(scored[:12], nll[:12], 0)), jnp.sum(jnp.where(scored[12:], nll[12:], 0))
  n = jnp.sum(scored)
  np.testing.assert_allclose(family.loss(logits, y), (new + known) / n, rtol=1e-6)
  np.testing.assert_allclose(heavy.loss(logits, y), (new + 4.0 * known) / n, rtol=1e-6)
  # the metrics that are not the loss do not change with the weight
  m, mh = family.metrics(logits, y), heavy.metrics(logits, y)
  for k in ("answer_accuracy", "new_loss", "known_accuracy", "known_loss"):
    assert float(m[k]) == float(mh[k])

  # a limit: the new rows' mean loss plus the weight times the probe's mean loss above it
  new_mean, known_mean = new / jnp.sum(scored[:12]), known / jnp.sum(scored[12:])
  for limit in (0.5 * float(known_mean), 2.0 * float(known_mean)):
    hinge = task.build_family(_task(known_weight=4.0, known_limit=limit), "test").chapters
    np.testing.assert_allclose(
        hinge.loss(logits, y), new_mean + 4.0 * max(0.0, float(known_mean) - limit), rtol=1e-5)
    grad = jax.grad(hinge.loss)(logits, y)  # below the limit the probe's rows get no gradient
    assert bool(jnp.any(grad[12:] != 0)) == (limit < float(known_mean))
    assert bool(jnp.any(grad[:12] != 0))
    assert float(hinge.metrics(logits, y)["known_loss"]) == float(m["known_loss"])


def test_known_kl_measures_the_probe_against_the_base_and_learning_its_answers_costs():
  kl_family = task.build_family(_task(known_weight=4.0, known_kl=True), "test").chapters
  assert kl_family.wants_reference and not task.build_family(_task(), "test").wants_reference
  y = kl_family.sample(jax.random.key(0)).query_y
  base = jax.random.normal(jax.random.key(1), y.shape + (kl_family.vocab_size,))
  scored = y >= 0
  nll = -jnp.take_along_axis(jax.nn.log_softmax(base), jnp.maximum(y, 0)[..., None], -1)[..., 0]
  new_mean = jnp.sum(jnp.where(scored[:12], nll[:12], 0)) / jnp.sum(scored[:12])
  # unchanged probe rows: no KL, the new rows' loss alone (the probe's own loss is large)
  np.testing.assert_allclose(kl_family.loss(base, y, base), new_mean, rtol=1e-6)
  # learning the probe's answers (one-hot on them) moves away from the base: it costs
  learnt = base.at[12:].set(jnp.where(jax.nn.one_hot(jnp.maximum(y[12:], 0),
                                                     kl_family.vocab_size) > 0, 20.0, -20.0))
  p_base = jax.nn.softmax(base[12:])
  kl = jnp.sum(p_base * (jax.nn.log_softmax(base[12:]) - jax.nn.log_softmax(learnt[12:])), -1)
  kl_mean = jnp.sum(jnp.where(scored[12:], kl, 0)) / jnp.sum(scored[12:])
  np.testing.assert_allclose(kl_family.loss(learnt, y, base), new_mean + 4.0 * kl_mean,
                             rtol=1e-5)
  assert float(kl_family.metrics(learnt, y)["known_loss"]) < 1e-6  # while its loss is ~0
  # a limit in nats of KL: below it the probe's rows get no gradient
  for limit, probe_grad in ((0.5 * float(kl_mean), True), (2.0 * float(kl_mean), False)):
    hinge = task.build_family(_task(known_weight=4.0, known_kl=True, known_limit=limit),
                              "test").chapters
    np.testing.assert_allclose(hinge.loss(learnt, y, base),
                               new_mean + 4.0 * max(0.0, float(kl_mean) - limit), rtol=1e-5)
    grad = jax.grad(hinge.loss)(learnt, y, base)
    assert bool(jnp.any(grad[12:] != 0)) == probe_grad
  with pytest.raises(ValueError, match="supplies none .* 'lora_finetune'"):
    kl_family.loss(base, y)


def test_bad_options_are_refused_with_the_fix():
  base = dict(name="biography_reading", known_people=30, num_chapters=3, eval_chapters=2,
              people_per_chapter=2, multiplicity=2, book_chapters=2)
  def config(**task_overrides):
    c = ml_collections.ConfigDict()
    c.task = base | task_overrides
    c.model = dict(name="decoder_lm")
    c.learner = dict(name="lora_finetune")
    c.eval = dict(num_query=12, num_tasks=2)
    return c
  with pytest.raises(ConfigError, match="a chapter has 12 questions"):
    config_lib.validate(config(num_query=13))
  with pytest.raises(ConfigError, match="split three ways .* the smallest part, 5 people, has "
                     "30 questions"):
    config_lib.validate(config(num_known=31))
  with pytest.raises(ConfigError, match="no trained questions to replay"):
    config_lib.validate(config(qa_fraction=0.0, replay_share=0.5, num_known=6))
  with pytest.raises(ConfigError, match="at most 2"):
    config_lib.validate(config(book_chapters=3))
  with pytest.raises(ConfigError, match="task.num_known=0 asks no probe questions"):
    config_lib.validate(config(num_known=0, known_limit=0.2))
  with pytest.raises(ConfigError, match="known_kl measures the forgetting probe"):
    config_lib.validate(config(num_known=0, known_kl=True))
  # lora_finetune gives its loss the base's logits
  config_lib.validate(config(known_kl=True, num_query=12))
  with pytest.raises(ConfigError, match="a biography takes .* raise max_len"):
    task.build_family(_task(max_len=20), "train")


def test_a_book_is_distinct_chapters_read_in_order_in_exercises_of_their_rows():
  t = _task(replay_share=1 / 3, eval_chapters=3, book_chapters=3, steps_per_chapter=4,
            rows_per_step=2)
  book = task.build_family(t, "test")
  assert book.view("episodes") is book.chapters and book.num_steps == 12
  key = jax.random.key(5)
  episode = book.sample(key)
  picked = np.asarray(episode.info["chapters"])
  assert sorted(picked.tolist()) == [0, 1, 2]  # distinct chapters, in a random order
  assert episode.support_x.shape == (12, 2, book.chapters.support_x.shape[-1])
  assert episode.query_x.shape[:2] == (3, 12 + 6)
  np.testing.assert_array_equal(episode.info["chapter_of_step"], np.repeat([0, 1, 2], 4))
  # chapter c's exercises are its own episode's rows (6: 4 biographies, 2 replayed), cycled
  _, k_chapters = jax.random.split(key)
  for c, k in enumerate(jax.random.split(k_chapters, 3)):
    alone = book.chapters.chapter_episode(picked[c], k)
    np.testing.assert_array_equal(episode.query_x[c], alone.query_x)
    for e in range(4):
      rows = [(e * 2 + j) % 6 for j in range(2)]
      np.testing.assert_array_equal(episode.support_x[c * 4 + e], np.asarray(alone.support_x)[rows])
