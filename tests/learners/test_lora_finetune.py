"""LoRA fine-tuning as a learner: meta-gradients through k Tinker-shaped steps checked against
finite differences in float64; backprop meta-training improves fine-tuning; PES and truncated
backprop estimate the same meta-gradient; the learner is picked by name."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn import config as config_lib
from metalearn import experiment, lm
from metalearn.estimators.backprop import full_backprop, truncated_backprop
from metalearn.estimators.pes import pes
from metalearn.learners.lora_finetune import LoRAFineTuner
from metalearn.lm.lora import LoRAConfig
from metalearn.objectives.success import final_loss
from metalearn.registry import ConfigError
from metalearn.tasks.biographies import BiographyFamily
from metalearn.unroll import unroll
from tests.conftest import CONFIGS, meta_train_tiny

SIZES = dict(vocab_size=24, hidden_size=16, intermediate_size=24, num_layers=1, num_heads=2,
             num_kv_heads=1, head_dim=8, max_position_embeddings=32)


def _family():
  """6 'people', each 4 noisy copies of one token row: 2 read, 2 asked (last 3 tokens)."""
  rng = np.random.RandomState(0)
  rows = np.repeat(rng.randint(0, 24, (6, 1, 9)), 4, axis=1)
  rows[:, :, -2:] = rng.randint(0, 24, (6, 4, 2))
  x, y = rows[..., :-1], rows[..., 1:].copy()
  query_y = y[:, 2:].copy()
  query_y[..., :-3] = -1
  return BiographyFamily(jnp.asarray(x[:, :2]), jnp.asarray(y[:, :2]), jnp.asarray(x[:, 2:]),
                         jnp.asarray(query_y), num_query=2, vocab_size=24)


def _flat(tree):
  return jnp.concatenate([x.ravel() for x in jax.tree.leaves(tree)])


def _cosine(a, b):
  a, b = _flat(a), _flat(b)
  return float(a @ b / jnp.linalg.norm(a) / jnp.linalg.norm(b))


# Central differences err by ~eps^2 times the third derivative. Adam's first steps (v ~ g^2:
# an update close to lr * sign(g)) curve the post-fine-tuning loss far more along a random
# direction than SGD's, so its step is smaller (measured relative error: Adam 3e-6 at 1e-6,
# 3e-8 at 1e-7; SGD 1e-9 at 1e-6).
@pytest.mark.parametrize("optimizer,eps", [("sgd", 1e-6), ("adam", 1e-7)])
def test_meta_gradient_matches_finite_differences_in_float64(optimizer, eps):
  with jax.enable_x64(True):
    c = lm.from_group(dict(name="qwen3", dtype="float64", param_dtype="float64", **SIZES))
    learner = LoRAFineTuner(lm.create(c, seed=0), LoRAConfig(rank=2, alpha=4.0),
                            num_inner_steps=3, optimizer=optimizer, init_lr=3e-2,
                            learn=("init", "lr", "token_weights"), rows_per_step=1)
    theta = learner.init(jax.random.key(1))
    theta = jax.tree.map(lambda x: x.astype(jnp.float64), theta)
    # a trained-looking init: B nonzero, so every part of theta matters
    theta["init"] = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(
        jax.random.key(2), x.shape, jnp.float64), theta["init"])
    episode = _family().sample(jax.random.key(3))

    @jax.jit
    def post_loss(th):
      _, curve = unroll(learner, th, learner.init_state(th, episode), episode, 3)
      return curve[-1]

    grad = jax.jit(jax.grad(post_loss))(theta)
    direction = jax.tree.map(lambda x: jax.random.normal(jax.random.key(4), x.shape,
                                                          jnp.float64), theta)
    plus = post_loss(jax.tree.map(lambda t, d: t + eps * d, theta, direction))
    minus = post_loss(jax.tree.map(lambda t, d: t - eps * d, theta, direction))
    fd = (plus - minus) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad),
                                                   jax.tree.leaves(direction)))
    assert abs(float(analytic) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd))), (analytic, fd)
    # the learning rate's and the token weights' gradients are real, not zero
    assert abs(float(grad["lr"])) > 1e-6
    assert float(jnp.abs(grad["token_weights"]).max()) > 1e-6


def _learner(optimizer="sgd", steps=2, learn=("init", "lr")):
  c = lm.from_group(dict(name="llama", **SIZES))
  return LoRAFineTuner(lm.create(c, seed=0), LoRAConfig(rank=2, alpha=4.0),
                       num_inner_steps=steps, optimizer=optimizer, init_lr=1e-2, learn=learn)


def test_backprop_meta_training_improves_fine_tuning():
  learner, family = _learner(), _family()
  backprop = full_backprop(learner, family, final_loss, meta_batch_size=4, num_steps=2)
  theta = learner.init(jax.random.key(0))
  opt = optax.adam(2e-2)
  opt_state = opt.init(theta)
  step = jax.jit(lambda th, s, k: backprop.estimate(th, s, k))
  losses = []
  for _ in range(8):
    grads, _, metrics = step(theta, (), jax.random.key(100))  # the same tasks each step
    losses.append(float(metrics["meta_loss"]))
    updates, opt_state = opt.update(grads, opt_state, theta)
    theta = optax.apply_updates(theta, updates)
  assert losses[-1] < losses[0] - 0.5, losses  # measured: 3.20 -> 2.23 in 8 steps


def test_adam_meta_gradient_from_a_fresh_adapter_is_finite():
  # B = 0 makes every A's first gradient exactly zero, where sqrt(v)'s derivative is infinite
  learner, family = _learner("adam", steps=1), _family()
  theta = learner.init(jax.random.key(0))
  grads, _, metrics = jax.jit(full_backprop(learner, family, final_loss, 2, 1).estimate)(
      theta, (), jax.random.key(1))
  assert np.isfinite(float(metrics["meta_loss"]))
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(_flat(grads["init"])).max()) > 0


def test_truncated_backprop_and_pes_on_fine_tuning():
  learner, family = _learner("sgd", steps=2, learn=("init", "lr", "token_weights")), _family()
  theta = learner.init(jax.random.key(0))
  theta["init"] = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2),
                                                                     x.shape), theta["init"])
  g_full = jax.jit(full_backprop(learner, family, final_loss, 256, 2).estimate)(
      theta, (), jax.random.key(5))[0]
  # one segment covering the whole horizon, on the same tasks: exactly backprop's gradient
  one = truncated_backprop(learner, family, final_loss, 256, 2, truncation_length=2)
  g_one = jax.jit(one.estimate)(theta, one.init(jax.random.key(5), theta),
                                jax.random.key(6))[0]
  for a, b in zip(jax.tree.leaves(g_one), jax.tree.leaves(g_full)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # two segments: the inner state (adapters, optimizer, step count) carries from the first
  two = truncated_backprop(learner, family, final_loss, 8, 2, truncation_length=1)
  state = two.init(jax.random.key(5), theta)
  estimate = jax.jit(two.estimate)
  _, state, _ = estimate(theta, state, jax.random.key(6))
  assert (np.asarray(state.inner_state["t"]) == 1).all() and (np.asarray(state.step) == 1).all()
  g2, state, _ = estimate(theta, state, jax.random.key(7))
  assert (np.asarray(state.step) == 0).all()  # horizon reached: fresh tasks next
  # the second segment starts from carried adapters: no gradient reaches the init, the
  # learning rate and token weights still get one
  assert float(jnp.abs(_flat(g2["init"])).max()) == 0
  assert abs(float(g2["lr"])) > 0 and float(jnp.abs(g2["token_weights"]).max()) > 0
  # PES over two segments of persistent runs, on backprop's 256 tasks: unbiased, so it points
  # along backprop's gradient, the initialisation's part included (cosine over ~1,000
  # meta-parameters; measured 0.21 for both, a random direction's about +-0.03)
  p = pes(learner, family, final_loss, 256, 2, truncation_length=1, sigma=0.01, stagger=False)
  state = p.init(jax.random.key(5), theta)
  estimate = jax.jit(p.estimate)
  total = None
  for i in range(2):
    g, state, _ = estimate(theta, state, jax.random.key(10 + i))
    total = g if total is None else jax.tree.map(jnp.add, total, g)
  assert _cosine(total, g_full) > 0.1, _cosine(total, g_full)
  assert _cosine(total["init"], g_full["init"]) > 0.1, _cosine(total["init"], g_full["init"])


def _config(*overrides):
  module = config_lib.load_config_module(str(CONFIGS / "lm" / "meta_finetune.py"))
  c = module.get_config("tiny")
  for key, value in overrides:
    node = c
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return c


def test_picked_by_name_with_clear_errors():
  exp = experiment.build(_config())
  assert isinstance(exp.learner, LoRAFineTuner) and exp.learner.num_inner_steps == 2
  assert exp.learner.model.config.vocab_size == exp.family.output_dim == 259  # bytes + 3
  assert set(exp.learner.init(jax.random.key(0))) == {"init", "lr"}
  cases = [
      (("learner.learn", ()), "learner.learn"),
      (("learner.learn", ("init", "init")), "names a part twice"),
      (("learner.learn", ("bias",)), "learner.learn"),
      (("learner.rank", 0), "learner.rank"),
      (("eval.baselines", ("random_init",)), "not one; use ('initial',)"),
      (("model", dict(name="mlp")), "needs a lm model, one of ['decoder_lm']"),
      (("task.num_query", 3), "task.num_query=3"),
      (("learner.optimizer", "lion"), "one of ('sgd', 'adam') or a learned optimizer"),
      (("learner.learn", ("optimizer",)), "has nothing to learn: name a learned optimizer"),
      (("learner.lopt", dict(hidden=(4,))), "learner.lopt sets a learned optimizer's"),
  ]
  for override, words in cases:
    with pytest.raises(ConfigError, match=re.escape(words)):
      config_lib.validate(_config(override))
  with pytest.raises(ConfigError, match="below the task's tokenizer"):
    experiment.build(_config(("model.lm", dict(name="llama", vocab_size=100, hidden_size=16,
                                               intermediate_size=32, num_layers=1,
                                               num_heads=2, num_kv_heads=1, head_dim=8))))


def test_meta_train_binary_tiny(tmp_path):
  result = meta_train_tiny("lm/meta_finetune.py", "tiny", tmp_path)
  assert "| method | 0 steps | 2 steps |" in result.stdout
  evaluated = json.loads((tmp_path / "eval.json").read_text())
  assert set(evaluated["methods"]) == {"meta", "initial"}
  assert evaluated["metric"] == "answer_accuracy" and evaluated["checkpoint_step"] == 4
  for method in evaluated["methods"].values():
    assert len(method["answer_accuracy"]) == len(method["loss"]) == 3
    assert all(np.isfinite(method["loss"]))
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["meta_loss"]) for r in rows)


def test_the_book_reader_reads_exercise_t_at_step_t_and_averages_the_chapters_read():
  from metalearn.tasks.base import Episode  # pylint: disable=g-import-not-at-top
  c = lm.from_group(dict(name="llama", **SIZES))
  learner = LoRAFineTuner(lm.create(c, seed=0), LoRAConfig(rank=2, alpha=4.0),
                          num_inner_steps=1, optimizer="sgd", init_lr=0.5, learn=("lr",))
  fam = _family()  # a book of 2 chapters x 2 exercises of 1 row: people 0 and 1
  book = Episode(fam.support_x[:2].reshape(4, 1, -1), fam.support_y[:2].reshape(4, 1, -1),
                 fam.query_x[:2], fam.query_y[:2],
                 {"chapter_of_step": jnp.array([0, 0, 1, 1], jnp.int32)})
  reader = learner.reader(type("Book", (), {"num_steps": 4})())
  assert reader.num_inner_steps == 4 and reader.mode == "lora"
  theta = reader.init(jax.random.key(0))
  state = reader.init_state(theta, book)
  chapter_loss = lambda s, ch: float(fam.loss(reader.predict(theta, s, book.query_x[ch]),
                                              book.query_y[ch]))
  # before any step (and after the first chapter's steps): chapter 0 alone
  assert float(reader.query_loss(theta, state, book)) == pytest.approx(chapter_loss(state, 0))
  for t in range(4):
    new = reader.step(theta, state, book)
    # step t's update is the gradient on exercise t: the plain learner on that row agrees
    one = Episode(book.support_x[t], book.support_y[t], book.query_x[0], book.query_y[0], {})
    want = learner.step(theta, {**state, "t": jnp.zeros((), jnp.int32)}, one)
    for a, b in zip(jax.tree.leaves(new["lora"]), jax.tree.leaves(want["lora"])):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    state = new
    read = [0] if t < 2 else [0, 1]
    assert float(reader.query_loss(theta, state, book)) == pytest.approx(
        np.mean([chapter_loss(state, ch) for ch in read]), rel=1e-5)
  assert reader.chapter_predictions(theta, state, book).shape[:2] == (2, 2)
  assert int(reader.start_at(theta, book, 2)["t"]) == 2


def test_a_learned_optimizer_updates_the_adapters_and_its_meta_gradient_flows():
  c = _config(("learner.optimizer", "mlp_lopt"), ("learner.learn", ("optimizer",)),
              ("learner.lopt", dict(hidden=(8,), step_mult=0.1)))
  exp = experiment.build(c)
  learner = exp.learner
  assert learner.rule.hidden == (8,) and learner.rule.step_mult == 0.1
  theta = learner.init(jax.random.key(0))
  assert set(theta) == {"optimizer"} and learner.describe()["inner_lr"] is None
  episode = exp.family.sample(jax.random.key(1))
  state = learner.init_state(theta, episode)
  new = learner.step(theta, state, episode)
  moved = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(new["lora"]),
                                                       jax.tree.leaves(state["lora"]))]
  assert max(moved) > 0  # the rule's update reached the adapters
  # its meta-gradient through the fine-tuning steps differs from zero and is finite
  grads, _ = jax.grad(lambda th: (final_loss(unroll(learner, th, learner.init_state(
      th, episode), episode, 2)[1]), None), has_aux=True)(theta)
  flat = _flat(grads)
  assert bool(jnp.all(jnp.isfinite(flat))) and float(jnp.abs(flat).max()) > 0
  for bad, words in ((("learner.learn", ("optimizer", "lr")), "sets its own step sizes"),
                     (("learner.lopt", dict(width=3)), "mlp_lopt takes")):
    with pytest.raises(ConfigError, match=re.escape(words)):
      config_lib.validate(_config(("learner.optimizer", "mlp_lopt"),
                                  ("learner.learn", ("optimizer",)), bad))


def test_with_reference_the_loss_gets_the_base_models_logits_without_gradient():
  from metalearn.tasks.base import Episode  # pylint: disable=g-import-not-at-top
  from metalearn.tasks.biographies import token_kl  # pylint: disable=g-import-not-at-top
  model = lm.create(lm.from_group(dict(name="llama", **SIZES)), seed=0)
  kl = lambda logits, y, reference: token_kl(logits, reference, y)
  learner = LoRAFineTuner(model, LoRAConfig(rank=2, alpha=4.0), num_inner_steps=2,
                          optimizer="sgd", init_lr=0.5, learn=("lr",), loss_fn=kl,
                          reference=True)
  fam = _family()
  episode = fam.sample(jax.random.key(0))
  theta = learner.init(jax.random.key(0))
  state = learner.init_state(theta, episode)
  # adapters start with B = 0: the base model itself, no divergence from it
  assert float(learner.query_loss(theta, state, episode)) == pytest.approx(0.0, abs=1e-6)
  final, curve = unroll(learner, theta, state, episode, 2)
  base = model(episode.query_x)[0]
  np.testing.assert_allclose(curve[-1], token_kl(learner.predict(theta, final, episode.query_x),
                                                 base, episode.query_y), rtol=1e-5)
  assert float(curve[-1]) > 1e-4
  grad = jax.grad(lambda th: unroll(learner, th, learner.init_state(th, episode), episode,
                                    2)[1][-1])(theta)
  assert np.isfinite(float(grad["lr"])) and float(grad["lr"]) > 0  # a larger step drifts more
  # a book reader: each chapter's rows against the base's logits on the same rows
  book = Episode(fam.support_x[:2].reshape(4, 1, -1), fam.support_y[:2].reshape(4, 1, -1),
                 fam.query_x[:2], fam.query_y[:2],
                 {"chapter_of_step": jnp.array([0, 0, 1, 1], jnp.int32)})
  reader = learner.reader(type("Book", (), {"num_steps": 4})())
  assert reader.reference
  state = reader.init_state(theta, book)
  for _ in range(3):
    state = reader.step(theta, state, book)
  want = np.mean([token_kl(reader.predict(theta, state, book.query_x[c]),
                           model(book.query_x[c])[0], book.query_y[c]) for c in (0, 1)])
  assert float(reader.query_loss(theta, state, book)) == pytest.approx(want, rel=1e-5)
