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
