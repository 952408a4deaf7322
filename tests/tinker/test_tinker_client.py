"""Tinker's primitives in-process with the SDK's types: a supervised loop learns, gradients
accumulate until optim_step, sampled tokens' logprobs equal compute_logprobs on them, state
round-trips, custom and RL losses, and bad requests are refused by name."""

import asyncio

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tinker import types
from tinker.types.optimizer import OptimizerConfigBase, OptimParamsBase

from metalearn.tinker.client import ServiceClient, TinkerError
from metalearn.tinker import losses
from metalearn.tinker.losses import LossError
from metalearn.tinker.optimizers import OptimizerError
from tests.tinker.conftest import save_tiny_base

TEXT = "Ada Lovelace was born in London."


@pytest.fixture(scope="module")
def service(tmp_path_factory):
  directory = tmp_path_factory.mktemp("base")
  tok = save_tiny_base(directory)
  return ServiceClient({"tiny": directory}, root=tmp_path_factory.mktemp("runs")), tok


def _sft(tok, text=TEXT, prompt_len=5):
  ids = tok.encode(text)
  weights = [0.0] * (prompt_len - 1) + [1.0] * (len(ids) - prompt_len)
  return types.Datum(model_input=types.ModelInput.from_ints(ids[:-1]),
                     loss_fn_inputs={"target_tokens": ids[1:], "weights": weights})


def test_a_supervised_loop_learns_its_data(service):
  svc, tok = service
  trainer = svc.create_lora_training_client("tiny", rank=8, seed=0).result()
  datum = _sft(tok)
  first = trainer.forward_backward([datum], "cross_entropy").result()
  out = first.loss_fn_outputs[0]
  weights = np.asarray(datum.loss_fn_inputs["weights"].to_numpy())
  assert first.metrics["loss:sum"] == pytest.approx(
      -float(np.sum(weights * out["logprobs"].to_numpy())), rel=1e-5)
  adam = types.AdamParams(learning_rate=5e-3)
  trainer.optim_step(adam).result()
  for _ in range(30):
    fb = trainer.forward_backward([datum], "cross_entropy").result()
    trainer.optim_step(adam)
  assert fb.metrics["loss:sum"] < first.metrics["loss:sum"] / 5


def test_gradients_accumulate_until_optim_step(service):
  svc, tok = service
  a, b = _sft(tok), _sft(tok, "Alan Turing was born in London.")
  one = svc.create_lora_training_client("tiny", rank=4, seed=1).result()
  one.forward_backward([a], "cross_entropy")
  one.forward_backward([b], "cross_entropy")
  one.optim_step(types.AdamParams(learning_rate=1e-2, weight_decay=0.1, grad_clip_norm=1.0))
  both = svc.create_lora_training_client("tiny", rank=4, seed=1).result()
  loss = both.forward([a, b], "cross_entropy").result().metrics["loss:sum"]
  fb = both.forward_backward([a, b], "cross_entropy").result()
  assert fb.metrics["loss:sum"] == pytest.approx(loss, rel=1e-6)  # forward adds no gradient
  both.optim_step(types.AdamParams(learning_rate=1e-2, weight_decay=0.1, grad_clip_norm=1.0))
  for x, y in zip(jax.tree.leaves(one.params), jax.tree.leaves(both.params)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_sampled_logprobs_equal_compute_logprobs(service):
  svc, tok = service
  trainer = svc.create_lora_training_client("tiny", rank=4, seed=2).result()
  trainer.forward_backward([_sft(tok)], "cross_entropy")
  trainer.optim_step(types.AdamParams(learning_rate=5e-2))
  sampler = trainer.save_weights_and_get_sampling_client("s1").result()
  prompt = types.ModelInput.from_ints(tok.encode("Ada Love"))
  res = sampler.sample(prompt, num_samples=3, include_prompt_logprobs=True,
                       sampling_params=types.SamplingParams(max_tokens=8, seed=5)).result()
  assert len(res.sequences) == 3 and all(s.stop_reason in ("length", "stop")
                                         for s in res.sequences)
  prompt_lp = sampler.compute_logprobs(prompt).result()
  assert res.prompt_logprobs[0] is None and prompt_lp[0] is None
  np.testing.assert_allclose(res.prompt_logprobs[1:], prompt_lp[1:], rtol=1e-5, atol=1e-5)
  for seq in res.sequences:
    full = types.ModelInput.from_ints(prompt.to_ints() + seq.tokens)
    lp = sampler.compute_logprobs(full).result()[prompt.length:]
    np.testing.assert_allclose(seq.logprobs, lp, rtol=1e-4, atol=1e-4)
  top = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=1),
                       topk_prompt_logprobs=3).result().topk_prompt_logprobs
  assert top[0] is None and len(top[1]) == 3
  for i, candidates in enumerate(top[1:], start=1):  # the prompt's own token, if in the top 3
    ranked = [lp for _, lp in candidates]
    assert ranked == sorted(ranked, reverse=True)
    token = prompt.to_ints()[i]
    if token in [t for t, _ in candidates]:
      assert dict(candidates)[token] == pytest.approx(prompt_lp[i], abs=1e-5)
  base = svc.create_sampling_client(base_model="tiny").result()  # no adapter: other numbers
  assert base.compute_logprobs(prompt).result()[1:] != pytest.approx(prompt_lp[1:])


def test_string_stops_cut_where_the_text_holds_them(service):
  svc, tok = service
  sampler = svc.create_sampling_client(base_model="tiny").result()
  prompt = types.ModelInput.from_ints(tok.encode("Ada"))
  free = sampler.sample(prompt, 2, types.SamplingParams(max_tokens=12, seed=3)).result()
  text = tok.decode(free.sequences[0].tokens)
  word = text[3:5]  # two characters the first sequence spells, whatever its tokens
  out = sampler.sample(prompt, 2, types.SamplingParams(max_tokens=12, seed=3,
                                                       stop=[word])).result()
  for seq, ref in zip(out.sequences, free.sequences):
    full = tok.decode(ref.tokens)
    if word not in full:
      assert seq.tokens == ref.tokens and seq.stop_reason == ref.stop_reason
      continue
    n = next(n for n in range(1, len(ref.tokens) + 1) if word in tok.decode(ref.tokens[:n]))
    assert seq.tokens == ref.tokens[:n] and seq.stop_reason == "stop"
    np.testing.assert_allclose(seq.logprobs, ref.logprobs[:n])
  assert out.sequences[0].stop_reason == "stop"
  with pytest.raises(TinkerError, match="empty stop string"):
    sampler.sample(prompt, 1, types.SamplingParams(max_tokens=2, stop=[""]))


def test_state_round_trips_with_and_without_the_optimizer(service):
  svc, tok = service
  trainer = svc.create_lora_training_client("tiny", rank=4, seed=3).result()
  adam = types.AdamParams(learning_rate=1e-2)
  trainer.forward_backward([_sft(tok)], "cross_entropy")
  trainer.optim_step(adam)
  saved = trainer.save_state("ckpt").result().path
  assert saved.startswith("tinker://")
  trainer.forward_backward([_sft(tok)], "cross_entropy")
  trainer.optim_step(adam)
  want = jax.tree.map(np.asarray, trainer.params)
  again = svc.create_lora_training_client("tiny", rank=4, seed=9).result()
  again.load_state_with_optimizer(saved)
  again.forward_backward([_sft(tok)], "cross_entropy")
  again.optim_step(adam)
  for x, y in zip(jax.tree.leaves(want), jax.tree.leaves(again.params)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
  sampler_path = trainer.save_weights_for_sampler("w").result().path
  with pytest.raises(TinkerError, match="without optimizer state"):
    again.load_state_with_optimizer(sampler_path)
  other = svc.create_lora_training_client("tiny", rank=8).result()
  with pytest.raises(TinkerError, match="rank-4 adapter"):
    other.load_state(saved)


def test_custom_and_rl_losses(service):
  svc, tok = service
  datum = _sft(tok)
  trainer = svc.create_lora_training_client("tiny", rank=4, seed=4).result()
  builtin = trainer.forward([datum], "cross_entropy").result().metrics["loss:sum"]
  weights = jnp.asarray(datum.loss_fn_inputs["weights"].to_numpy())
  custom = trainer.forward_backward_custom(
      [datum], lambda data, logprobs: (-jnp.sum(weights * logprobs[0]), {"n": 1.0})).result()
  assert custom.metrics["loss:sum"] == pytest.approx(builtin, rel=1e-6)
  assert custom.metrics["n"] == 1.0
  # on-policy importance sampling: ratio 1, so the loss is -sum(advantages)
  lp = trainer.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
  adv = np.linspace(-1, 1, len(lp.to_numpy())).astype(np.float32)
  rl = types.Datum(model_input=datum.model_input, loss_fn_inputs={
      "target_tokens": datum.loss_fn_inputs["target_tokens"], "logprobs": lp,
      "advantages": adv})
  for name in ("importance_sampling", "ppo"):
    out = trainer.forward([rl], name).result()
    assert out.metrics["loss:sum"] == pytest.approx(-float(adv.sum()), abs=1e-4)


def test_a_custom_jax_loss_runs_in_the_single_pass(service):
  svc, tok = service
  datum = _sft(tok)
  doubled = losses.Loss("doubled_ce", ("weights",), {"factor": 2.0},
                        lambda logp, inputs, config: -config["factor"] * inputs["weights"] * logp)
  reference = svc.create_lora_training_client("tiny", rank=2, seed=4).result()
  custom = svc.create_lora_training_client("tiny", rank=2, seed=4).result()
  ce = reference.forward_backward([datum], "cross_entropy").result()
  out = custom.forward_backward([datum], doubled, {"factor": 3.0}).result()
  assert out.metrics["loss:sum"] == pytest.approx(3 * ce.metrics["loss:sum"], rel=1e-5)
  for a, b in zip(jax.tree.leaves(custom.gradients()), jax.tree.leaves(reference.gradients())):
    np.testing.assert_allclose(a, 3 * b, rtol=1e-4, atol=1e-5)  # float32 sums of ~1
  assert [k for k in custom._compiled if k[0] is doubled] == [(doubled, True)]  # one program
  with pytest.raises(LossError, match=r"keys \['beta'\] are not options of 'doubled_ce'"):
    custom.forward_backward([datum], doubled, {"beta": 1.0})


def test_gradients_and_hidden_states_on_request(service):
  svc, tok = service
  trainer = svc.create_lora_training_client("tiny", rank=4, seed=5).result()
  datum = _sft(tok)
  trainer.forward_backward([datum], "cross_entropy")
  grads = trainer.gradients()
  assert set(grads["layers"]) == {"q", "k", "v", "o", "gate", "up", "down"}
  assert float(np.abs(grads["layers"]["q"]["b"]).max()) > 0
  trainer.optim_step(types.AdamParams())
  assert float(np.abs(trainer.gradients()["layers"]["q"]["b"]).max()) == 0  # cleared
  hidden, = trainer.hidden_states([types.Datum(model_input=datum.model_input)])
  assert hidden.shape == (datum.model_input.length, 32) and np.isfinite(hidden).all()


def test_async_twins_return_what_the_sdks_do(service):
  svc, tok = service

  async def loop():
    trainer = await svc.create_lora_training_client("tiny", rank=4)  # a future of the client
    fut = await trainer.forward_backward_async([_sft(tok)], "cross_entropy")
    result = await fut.result_async()
    await (await trainer.optim_step_async(types.AdamParams()))
    sampler = await trainer.save_weights_and_get_sampling_client_async("a")
    sample = await sampler.sample_async(types.ModelInput.from_ints(tok.encode("Ada")), 1,
                                        types.SamplingParams(max_tokens=3))
    logprobs = await sampler.compute_logprobs_async(types.ModelInput.from_ints([1, 2, 3]))
    return result, sample, logprobs

  result, sample, logprobs = asyncio.run(loop())
  assert result.metrics["loss:sum"] > 0
  assert isinstance(sample, types.SampleResponse) and len(sample.sequences[0].tokens) == 3
  assert logprobs[0] is None and len(logprobs) == 3


def test_bad_requests_are_refused_by_name(service):
  svc, tok = service
  with pytest.raises(TinkerError, match="base_model 'nope'"):
    svc.create_lora_training_client("nope").result()
  trainer = svc.create_lora_training_client("tiny", rank=2).result()
  datum = _sft(tok)
  with pytest.raises(LossError, match="'sft' is not a built-in loss"):
    trainer.forward_backward([datum], "sft")
  with pytest.raises(LossError, match=r"needs loss_fn_inputs \['logprobs', 'advantages'\]"):
    trainer.forward_backward([datum], "ppo")
  short = types.Datum(model_input=datum.model_input, loss_fn_inputs={
      "target_tokens": [1, 2], "weights": [1.0, 1.0]})
  with pytest.raises(TinkerError, match="one entry per position"):
    trainer.forward_backward([short], "cross_entropy")
  with pytest.raises(OptimizerError, match="optim_step takes types.AdamParams"):
    trainer.optim_step({"learning_rate": 1e-3})
  image = types.ModelInput(chunks=[types.EncodedTextChunk(tokens=[1, 2]), types.ImageChunk(
      data=b"\x89PNG", format="png", expected_tokens=4)])
  with pytest.raises(TinkerError, match="prompt: only token chunks are supported"):
    svc.create_sampling_client(base_model="tiny").result().sample(
        image, 1, types.SamplingParams(max_tokens=2))


def test_any_optax_or_learned_optimizer_behind_optim_step(service, tmp_path):
  svc, tok = service
  datum = _sft(tok)
  lion = svc.create_lora_training_client(
      "tiny", rank=4, optimizer=OptimizerConfigBase(type="optax", name="lion", b1=0.95)).result()
  first = lion.forward_backward([datum], "cross_entropy").result().metrics["loss:sum"]
  for _ in range(10):
    lion.optim_step(OptimParamsBase(type="optax", learning_rate=2e-3))
    last = lion.forward_backward([datum], "cross_entropy").result().metrics["loss:sum"]
  assert last < first
  with pytest.raises(OptimizerError, match="OptimParamsBase\\(type='optax'"):
    lion.optim_step(types.AdamParams())
  # a metalearn learned optimizer, exported as the learned-optimizer docs show
  from metalearn.learners import export  # pylint: disable=g-import-not-at-top
  rule = export.make_rule("mlp_lopt", {})
  export.save(tmp_path / "lopt", "mlp_lopt", {}, rule.init(jax.random.key(0)))
  learned = svc.create_lora_training_client("tiny", rank=4, optimizer=OptimizerConfigBase(
      type="learned", path=str(tmp_path / "lopt"), num_steps=100)).result()
  before = jax.tree.map(np.asarray, learned.params)
  learned.forward_backward([datum], "cross_entropy")
  learned.optim_step(OptimParamsBase(type="learned"))
  moved = [float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(before),
                                                        jax.tree.leaves(learned.params))]
  assert max(moved) > 0
  for bad, match in [(types.DimuonOptimizerConfig(), "dimuon optimizer family is not served"),
                     (OptimizerConfigBase(type="optax", name="nope"), "needs name="),
                     (OptimizerConfigBase(type="sgd2"), "not served")]:
    with pytest.raises(OptimizerError, match=match):
      svc.create_lora_training_client("tiny", rank=4, optimizer=bad).result()
