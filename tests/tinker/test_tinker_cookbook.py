"""A tinker-cookbook supervised loop against the server: the cookbook's renderer turns
conversations into datums (its conversation_to_datum), the SDK trains on them through
experiments/serve_tinker.py, and the loss per token falls; sampling with the renderer's stop
sequences gives a message the renderer parses. Skipped without the cookbook extra
(``pip install -e ".[cookbook]"``)."""

import numpy as np
import pytest

pytest.importorskip("tinker_cookbook", reason="the cookbook extra is not installed: "
                    "pip install -e '.[cookbook]'")
from tinker import types  # pylint: disable=g-import-not-at-top,wrong-import-position
import tinker  # pylint: disable=g-import-not-at-top,wrong-import-position
from tinker_cookbook import renderers  # pylint: disable=g-import-not-at-top,wrong-import-position
from tinker_cookbook.supervised.data import conversation_to_datum  # pylint: disable=g-import-not-at-top,wrong-import-position
from tinker_cookbook.tokenizer_utils import get_tokenizer  # pylint: disable=g-import-not-at-top,wrong-import-position

from metalearn.lm import corpus  # pylint: disable=wrong-import-position


def test_a_cookbook_supervised_loop_learns(tinker_server):
  server, _, base = tinker_server
  tokenizer = get_tokenizer(str(base))  # the local tokenizer directory, no download
  renderer = renderers.get_renderer("role_colon", tokenizer)
  people = corpus.people(8, 0)
  conversations = [[{"role": "user", "content": corpus.question(p, "city")[0]},
                    {"role": "assistant", "content": corpus.question(p, "city")[1]}]
                   for p in people]
  data = [conversation_to_datum(c, renderer, max_length=128) for c in conversations]
  scored = sum(float(np.sum(d.loss_fn_inputs["weights"].to_numpy())) for d in data)
  service = tinker.ServiceClient(base_url=server.url, api_key="tml-local")
  trainer = service.create_lora_training_client("tiny", rank=8, seed=0).result()
  losses = []
  for _ in range(10):
    fb = trainer.forward_backward(data, "cross_entropy")
    step = trainer.optim_step(types.AdamParams(learning_rate=1e-2))
    losses.append(fb.result().metrics["loss:sum"] / scored)
    step.result()
  assert losses[-1] < losses[0] - 1.5, losses  # measured: 5.55 -> 2.45 nats per token
  sampler = trainer.save_weights_and_get_sampling_client().result()
  prompt = renderer.build_generation_prompt(conversations[0][:1])
  res = sampler.sample(prompt, 1, types.SamplingParams(
      max_tokens=16, temperature=0.0, stop=renderer.get_stop_sequences())).result()
  message, _ = renderer.parse_response(res.sequences[0].tokens)
  assert message["role"] == "assistant" and isinstance(message["content"], str)


def test_a_cookbook_rl_loop_raises_its_reward(tinker_server):
  """The cookbook's RL pieces: a ProblemEnv, group rollouts with its TinkerTokenCompleter,
  its group-centred advantages and datums, trained with importance_sampling."""
  import asyncio  # pylint: disable=g-import-not-at-top
  import string  # pylint: disable=g-import-not-at-top
  from tinker_cookbook.completers import TinkerTokenCompleter  # pylint: disable=g-import-not-at-top
  from tinker_cookbook.rl.data_processing import assemble_training_data, compute_advantages  # pylint: disable=g-import-not-at-top
  from tinker_cookbook.rl.problem_env import ProblemEnv, ProblemGroupBuilder  # pylint: disable=g-import-not-at-top
  from tinker_cookbook.rl.rollouts import do_group_rollout  # pylint: disable=g-import-not-at-top

  class Letters(ProblemEnv):
    """Reward: the share of lowercase letters in the reply (ProblemEnv's docstring allows a
    reward in [0, 1] from check_answer)."""

    def get_question(self):
      return "Write some letters."

    def check_answer(self, sample_str):
      return sum(c in string.ascii_lowercase for c in sample_str) / max(len(sample_str), 1)

    def check_format(self, sample_str):
      return True

    def get_reference_answer(self):
      return "abc"

  server, _, base = tinker_server
  renderer = renderers.get_renderer("role_colon", get_tokenizer(str(base)))
  builder = ProblemGroupBuilder(lambda: Letters(renderer, format_coef=0.0,
                                                require_stop_sequence_for_format=False),
                                num_envs=16)
  service = tinker.ServiceClient(base_url=server.url, api_key="tml-local")
  trainer = service.create_lora_training_client("tiny", rank=8, seed=0).result()

  async def train():
    rewards = []
    for _ in range(12):
      sampler = await trainer.save_weights_and_get_sampling_client()
      group = await do_group_rollout(builder, TinkerTokenCompleter(sampler, max_tokens=8))
      data, _ = assemble_training_data([group], compute_advantages([group]))
      await trainer.forward_backward(data, "importance_sampling")
      await trainer.optim_step(types.AdamParams(learning_rate=3e-2))
      rewards.append(float(np.mean(group.get_total_rewards())))
    return rewards

  rewards = asyncio.run(train())
  # measured: 0.09 at first, 0.80 / 0.96 / 0.99 / 1.0 over the last four iterations
  assert max(rewards[-3:]) > np.mean(rewards[:3]) + 0.3, rewards


def test_the_cookbooks_sl_loop_recipe_runs_offline_and_resumes(tinker_server, tmp_path,
                                                                monkeypatch):
  """``tinker_cookbook/recipes/sl_loop.py``'s ``main`` unmodified, offline: its Hub dataset
  (no_robots) replaced by procedural conversations, its renderer lookup (a registry of Hub
  model names) by ``role_colon``; the base model is the server's, named by its directory,
  which is also the cookbook's local tokenizer. It saves with a TTL, and a second run with a
  larger ``max_steps`` resumes from its last saved state."""
  import datasets  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  from tinker_cookbook import model_info  # pylint: disable=g-import-not-at-top
  from tinker_cookbook.recipes import sl_loop  # pylint: disable=g-import-not-at-top

  server, _, base = tinker_server
  people = corpus.people(48, 1)
  rows = [{"messages": [{"role": "user", "content": corpus.question(p, "city")[0]},
                        {"role": "assistant", "content": corpus.question(p, "city")[1]}]}
          for p in people]
  monkeypatch.setattr(datasets, "load_dataset", lambda name, *a, **k: datasets.DatasetDict(
      train=datasets.Dataset.from_list(rows)))
  monkeypatch.setattr(model_info, "get_recommended_renderer_name", lambda name: "role_colon")
  monkeypatch.setenv("TINKER_API_KEY", "tml-local")
  log_path = tmp_path / "sl-loop"

  def run(max_steps):
    sl_loop.main(sl_loop.Config(base_url=server.url, log_path=str(log_path),
                                model_name=str(base), batch_size=8, learning_rate=2e-2,
                                max_length=128, lora_rank=8, save_every=3,
                                max_steps=max_steps))
    lines = (log_path / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if "train_mean_nll" in line]

  def saved():
    return [json.loads(line) for line in
            (log_path / "checkpoints.jsonl").read_text().splitlines()]

  first = run(4)
  assert [m["step"] for m in first] == [0, 1, 2, 3]
  assert [c["name"] for c in saved()] == ["000003", "final"]
  # as if killed before its end: the recipe resumes from the last state it logged, step 3
  (log_path / "checkpoints.jsonl").write_text(
      (log_path / "checkpoints.jsonl").read_text().splitlines()[0] + "\n")
  second = run(6)
  assert [m["step"] for m in second] == [0, 1, 2, 3, 3, 4, 5]
  nll = [m["train_mean_nll"] for m in second]
  assert nll[4] == pytest.approx(nll[3], rel=1e-5)  # step 3 again, from the saved state
  assert nll[-1] < nll[0] - 1.0, nll
  print("train_mean_nll", [round(x, 2) for x in nll])
  # the resumed run saves at its first step (3) again, then its final state
  assert [c["name"] for c in saved()] == ["000003", "000003", "final"]
