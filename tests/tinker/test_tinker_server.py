"""The official tinker SDK against experiments/serve_tinker.py on a free localhost port: the same
losses and logprobs as the in-process API, sampled tokens' logprobs equal to compute_logprobs,
bad requests answered with a message and no change of state, and save, kill -9, restart, load
continuing with the same numbers."""

import json
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

import tinker
from tinker import types

from metalearn.tinker.client import ServiceClient

TEXT = "Ada Lovelace was born in London."


def _sdk(server):
  return tinker.ServiceClient(base_url=server.url, api_key="tml-local")


def _datum(tok, text=TEXT):
  ids = tok.encode(text)
  return types.Datum(model_input=types.ModelInput.from_ints(ids[:-1]),
                     loss_fn_inputs={"target_tokens": ids[1:],
                                     "weights": [0.0] * 4 + [1.0] * (len(ids) - 5)})


def test_the_sdk_gets_the_in_process_numbers(tinker_server, tmp_path):
  server, tok, base = tinker_server
  remote = _sdk(server).create_lora_training_client("tiny", rank=4, seed=3).result()
  local = ServiceClient({"tiny": base}, root=tmp_path).create_lora_training_client(
      "tiny", rank=4, seed=3).result()
  data = [_datum(tok), _datum(tok, "Alan Turing studied at Cambridge.")]
  for step in range(3):
    got = remote.forward_backward(data, "cross_entropy").result()
    want = local.forward_backward(data, "cross_entropy").result()
    assert got.metrics["loss:sum"] == pytest.approx(want.metrics["loss:sum"], rel=1e-5)
    for g, w in zip(got.loss_fn_outputs, want.loss_fn_outputs):
      np.testing.assert_allclose(g["logprobs"].to_numpy(), w["logprobs"].to_numpy(),
                                 rtol=1e-5, atol=1e-6)
    adam = types.AdamParams(learning_rate=1e-2)
    assert remote.optim_step(adam).result().metrics["grad_norm:mean"] == pytest.approx(
        local.optim_step(adam).result().metrics["grad_norm:mean"], rel=1e-4)
  ppo = [types.Datum(model_input=d.model_input, loss_fn_inputs={
      "target_tokens": d.loss_fn_inputs["target_tokens"],
      "logprobs": [-1.0] * d.model_input.length, "advantages": [0.5] * d.model_input.length})
      for d in data]
  got = remote.forward(ppo, "ppo", {"clip_high_threshold": 1.1}).result()
  want = local.forward(ppo, "ppo", {"clip_high_threshold": 1.1}).result()
  assert got.metrics["loss:sum"] == pytest.approx(want.metrics["loss:sum"], rel=1e-5)

  sampler = remote.save_weights_and_get_sampling_client().result()
  prompt = types.ModelInput.from_ints(tok.encode("Ada"))
  res = sampler.sample(prompt, num_samples=3, include_prompt_logprobs=True,
                       sampling_params=types.SamplingParams(max_tokens=6, seed=5)).result()
  local_sampler = local.save_weights_and_get_sampling_client("s").result()
  ref = local_sampler.sample(prompt, 3, types.SamplingParams(max_tokens=6, seed=5)).result()
  assert [s.tokens for s in res.sequences] == [s.tokens for s in ref.sequences]
  assert len({s.sequence_id for s in res.sequences}) == 3
  for seq in res.sequences:  # sampled tokens' logprobs are the model's
    full = types.ModelInput.from_ints(prompt.to_ints() + seq.tokens)
    lp = sampler.compute_logprobs(full).result()[prompt.length:]
    np.testing.assert_allclose(seq.logprobs, lp, rtol=1e-4, atol=1e-4)


def test_bad_requests_get_a_message_and_change_nothing(tinker_server):
  server, tok, _ = tinker_server
  trainer = _sdk(server).create_lora_training_client("tiny", rank=2, seed=1).result()
  before = trainer.forward([_datum(tok)], "cross_entropy").result().metrics["loss:sum"]
  r = httpx.post(f"{server.url}/api/v1/forward_backward", content=b"\xff\x00not a protobuf",
                 headers={"Content-Type": "application/x-protobuf"})
  assert r.status_code == 400 and "not a ForwardBackwardRequest" in r.json()["detail"]
  r = httpx.post(f"{server.url}/api/v1/optim_step", json={"model_id": "nope",
                                                          "optim_params": {}})
  assert r.status_code in (400, 404) and r.json()["detail"]
  r = httpx.post(f"{server.url}/api/v1/optim_step", json={
      "model_id": "nope", "seq_id": 1, "optim_params": {"learning_rate": 1e-3}})
  assert r.status_code == 404 and "is not a model of this server" in r.json()["detail"]
  r = httpx.post(f"{server.url}/api/v1/copy_weights", json={})
  assert r.status_code == 400 and "source_path" in r.json()["detail"]
  assert r.headers["x-should-retry"] == "false"  # the SDK would retry a 409 for minutes
  r = httpx.get(f"{server.url}/api/v1/sessions/nope/trace_export")
  assert r.status_code == 501 and "not supported" in r.json()["detail"]
  with pytest.raises(tinker.RequestFailedError, match="not a built-in loss"):
    trainer.forward_backward([_datum(tok)], "sft").result()
  with pytest.raises(tinker.RequestFailedError, match="needs loss_fn_inputs"):
    trainer.forward_backward([_datum(tok)], "ppo").result()
  after = trainer.forward([_datum(tok)], "cross_entropy").result().metrics["loss:sum"]
  assert after == before  # nothing was accumulated or stepped


def test_save_kill_restart_load_continues(tinker_server, tmp_path):
  server, tok, base = tinker_server
  trainer = _sdk(server).create_lora_training_client("tiny", rank=4, seed=7).result()
  data = [_datum(tok)]
  for _ in range(2):
    trainer.forward_backward(data, "cross_entropy").result()
    trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
  path = trainer.save_state("before-kill").result().path
  trainer.forward_backward(data, "cross_entropy").result()
  expected = trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
  expected_loss = trainer.forward(data, "cross_entropy").result().metrics["loss:sum"]

  server.kill()
  server.start()  # the same root: the saved state survives
  restored = _sdk(server).create_training_client_from_state_with_optimizer(path).result()
  restored.forward_backward(data, "cross_entropy").result()
  again = restored.optim_step(types.AdamParams(learning_rate=1e-2)).result()
  assert again.metrics["grad_norm:mean"] == pytest.approx(
      expected.metrics["grad_norm:mean"], rel=1e-5)
  loss = restored.forward(data, "cross_entropy").result().metrics["loss:sum"]
  assert loss == pytest.approx(expected_loss, rel=1e-5)


def _retrieve(url, request_id, proto=False, timeout=60.0):
  headers = {"Accept": "application/x-protobuf"} if proto else {}
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    r = httpx.post(f"{url}/api/v1/retrieve_future", json={"request_id": request_id},
                   headers=headers, timeout=30)
    r.raise_for_status()
    if "protobuf" in r.headers.get("content-type", ""):
      return r.content
    body = r.json()
    if body.get("type") != "try_again":
      return body
  raise TimeoutError(request_id)


def test_a_models_requests_run_in_seq_id_order(tinker_server):
  from tinker.proto import request_conv  # pylint: disable=g-import-not-at-top
  server, tok, _ = tinker_server
  url = server.url
  session = httpx.post(f"{url}/api/v1/create_session",
                       json={"tags": [], "user_metadata": None,
                             "sdk_version": "test"}).json()["session_id"]
  created = httpx.post(f"{url}/api/v1/create_model", json={
      "session_id": session, "model_seq_id": 0, "base_model": "tiny",
      "lora_config": {"rank": 2}}).json()
  model_id = _retrieve(url, created["request_id"])["model_id"]
  fb = request_conv.forward_backward_request_to_proto(types.ForwardBackwardRequest(
      forward_backward_input=types.ForwardBackwardInput(data=[_datum(tok)],
                                                        loss_fn="cross_entropy"),
      model_id=model_id, seq_id=1)).SerializeToString()
  step = {"model_id": model_id, "seq_id": 2, "optim_params": {"learning_rate": 1e-2}}
  # the optimizer step (seq 2) arrives first: it must wait for the gradient (seq 1)
  second = httpx.post(f"{url}/api/v1/optim_step", json=step).json()["request_id"]
  waiting = httpx.post(f"{url}/api/v1/retrieve_future", json={"request_id": second}).json()
  assert waiting["type"] == "try_again"
  first = httpx.post(f"{url}/api/v1/forward_backward", content=fb,
                     headers={"Content-Type": "application/x-protobuf"}).json()["request_id"]
  assert _retrieve(url, first, proto=True)
  assert _retrieve(url, second)["metrics"]["grad_norm:mean"] > 0  # it saw seq 1's gradient
  # a retry of seq 2 is the same request
  assert httpx.post(f"{url}/api/v1/optim_step", json=step).json()["request_id"] == second
  # seq 4 waits for seq 3 and is cancelled there; seq 3 and seq 5 then run in order
  fourth = httpx.post(f"{url}/api/v1/optim_step", json={**step, "seq_id": 4}).json()
  assert httpx.post(f"{url}/api/v1/cancel_future",
                    json={"request_id": fourth["request_id"]}).status_code == 200
  assert "cancelled" in _retrieve(url, fourth["request_id"])["error"]
  for seq in (3, 5):
    rid = httpx.post(f"{url}/api/v1/optim_step", json={**step, "seq_id": seq}).json()
    assert "metrics" in _retrieve(url, rid["request_id"]), seq
  session_info = httpx.get(f"{url}/api/v1/sessions/{session}").json()
  assert session_info["training_run_ids"] == [model_id]


def test_concurrent_clients_lose_nothing_and_keep_each_models_order(tinker_server, tmp_path):
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  server, tok, base = tinker_server
  texts = ["Ada Lovelace was born in London.", "Alan Turing studied at Cambridge.",
           "Grace Hopper worked for the Navy.", "Emmy Noether was born in Erlangen."]
  num_clients, num_steps = 8, 4

  def run(i, service):
    trainer = service.create_lora_training_client("tiny", rank=2, seed=i).result()
    data = [_datum(tok, texts[i % len(texts)])]
    # every request submitted before any result is read: the server orders them
    futures = []
    for _ in range(num_steps):
      futures.append(trainer.forward_backward(data, "cross_entropy"))
      futures.append(trainer.optim_step(types.AdamParams(learning_rate=2e-2)))
    return [f.result().metrics for f in futures]

  t0 = time.monotonic()
  with concurrent.futures.ThreadPoolExecutor(num_clients) as pool:
    remote = list(pool.map(lambda i: run(i, _sdk(server)), range(num_clients)))
  seconds = time.monotonic() - t0
  local_service = ServiceClient({"tiny": base}, root=tmp_path)
  for i, got in enumerate(remote):
    want = run(i, local_service)
    assert len(got) == 2 * num_steps
    for g, w in zip(got, want):
      key = next(iter(w))
      assert g[key] == pytest.approx(w[key], rel=1e-4), (i, g, w)
  print(f"{num_clients} clients x {2 * num_steps} requests in {seconds:.1f} s")


def test_runs_and_checkpoints_are_listed_as_the_cli_reads_them(tinker_server):
  server, tok, _ = tinker_server
  svc = _sdk(server)
  trainer = svc.create_lora_training_client("tiny", rank=3, seed=0).result()
  state = trainer.save_state("listed").result().path
  sampler = trainer.save_weights_for_sampler("listed-sampler").result().path
  rest = tinker.RestClient(base_url=server.url, api_key="tml-local")
  run = rest.get_training_run(trainer.model_id).result()
  assert run.lora_rank == 3 and run.base_model == "tiny"
  assert run.last_checkpoint.tinker_path == state
  assert run.last_sampler_checkpoint.tinker_path == sampler
  paths = {c.tinker_path for c in rest.list_checkpoints(trainer.model_id).result().checkpoints}
  assert paths == {state, sampler}
  runs = rest.list_training_runs(limit=100).result()
  assert trainer.model_id in {r.training_run_id for r in runs.training_runs}
  assert runs.cursor.total_count >= 1
  info = rest.get_weights_info_by_tinker_path(state).result()
  assert info.lora_rank == 3 and info.base_model == "tiny"
  everyone = rest.list_user_checkpoints(limit=1000).result()
  assert {state, sampler} <= {c.tinker_path for c in everyone.checkpoints}
  rest.delete_checkpoint(trainer.model_id, "sampler_weights/listed-sampler").result()
  paths = {c.tinker_path for c in rest.list_checkpoints(trainer.model_id).result().checkpoints}
  assert paths == {state}
  bad = httpx.delete(f"{server.url}/api/v1/training_runs/{trainer.model_id}/checkpoints/"
                     "weights/..%2F..%2Fescape")
  assert bad.status_code in (400, 404) and bad.json()["detail"]
  env = {**os.environ, "TINKER_BASE_URL": server.url, "TINKER_API_KEY": "tml-local"}
  for command, expected in ((["run", "list"], trainer.model_id[:8]),
                            (["checkpoint", "list", "--run-id", trainer.model_id], "listed")):
    cli = subprocess.run([sys.executable, "-m", "tinker.cli", *command], capture_output=True,
                         text=True, timeout=120, env=env)
    assert cli.returncode == 0 and expected in cli.stdout, cli.stdout + cli.stderr


def test_an_rl_loop_through_the_sdk_raises_its_reward(tinker_server):
  # GRPO-style: 16 samples of one prompt, reward = the share of sampled tokens that are
  # lowercase letters, advantages centred per group, Tinker's importance_sampling loss
  server, tok, _ = tinker_server
  letters = set(tok.encode("abcdefghijklmnopqrstuvwxyz"))
  trainer = _sdk(server).create_lora_training_client("tiny", rank=8, seed=0).result()
  prompt = types.ModelInput.from_ints(tok.encode("Say a:", bos=True))
  rewards = []
  for it in range(10):
    sampler = trainer.save_weights_and_get_sampling_client().result()
    res = sampler.sample(prompt, 16, types.SamplingParams(max_tokens=8, seed=it)).result()
    reward = np.array([np.mean([t in letters for t in s.tokens]) for s in res.sequences])
    rewards.append(float(reward.mean()))
    data = []
    for seq, advantage in zip(res.sequences, reward - reward.mean()):
      tokens, skip = prompt.to_ints() + seq.tokens, prompt.length - 1
      data.append(types.Datum(
          model_input=types.ModelInput.from_ints(tokens[:-1]),
          loss_fn_inputs={"target_tokens": tokens[1:],
                          "logprobs": [0.0] * skip + list(seq.logprobs),
                          "advantages": [0.0] * skip + [float(advantage)] * len(seq.tokens)}))
    trainer.forward_backward(data, "importance_sampling").result()
    trainer.optim_step(types.AdamParams(learning_rate=2e-2)).result()
  # measured: 0.125 at first (about 26 of 259 tokens), 1.0 after 10 updates
  assert np.mean(rewards[-2:]) > np.mean(rewards[:2]) + 0.3, rewards


def test_retrieve_futures_reports_a_sampling_sessions_completions(tinker_server):
  server, tok, _ = tinker_server
  url = server.url
  session = httpx.post(f"{url}/api/v1/create_session", json={
      "tags": [], "user_metadata": None, "sdk_version": "test"}).json()["session_id"]
  sampling = httpx.post(f"{url}/api/v1/create_sampling_session", json={
      "session_id": session, "sampling_session_seq_id": 0, "base_model": "tiny"}).json()
  sid = sampling["sampling_session_id"]
  sample = httpx.post(f"{url}/api/v1/asample", json={
      "sampling_session_id": sid, "num_samples": 2, "seq_id": 0,
      "prompt": types.ModelInput.from_ints(tok.encode("Ada")).model_dump(mode="json"),
      "sampling_params": {"max_tokens": 3, "seed": 1}}).json()
  assert len(sample["sample_sequence_ids"]) == 2
  target = {"type": "sampling_session", "sampling_session_id": sid}
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:  # each poll waits up to the server's poll_seconds
    polled = httpx.post(f"{url}/api/v1/retrieve_futures", timeout=30,
                        json={"target": target, "prev_cursor": 0}).json()
    if polled["completions"]:
      break
  assert polled["completions"] == [{"state": "finished", "request_id": sample["request_id"]}]
  assert polled["cursor"] == 1
  again = httpx.post(f"{url}/api/v1/retrieve_futures", json={
      "target": target, "prev_cursor": 1, "timeout": 0}).json()
  assert again == {"completions": [], "cursor": 1}
  bad = httpx.post(f"{url}/api/v1/retrieve_futures", json={"target": target, "prev_cursor": 7})
  assert bad.status_code == 400 and "prev_cursor 7" in bad.json()["detail"]
  result = _retrieve(url, sample["request_id"], proto=True)
  assert result  # the payload, fetched as the SDK does after the poll


def _cli(server, *args, timeout=120):
  env = {**os.environ, "TINKER_BASE_URL": server.url, "TINKER_API_KEY": "tml-local"}
  return subprocess.run([sys.executable, "-m", "tinker.cli", *args], capture_output=True,
                        text=True, timeout=timeout, env=env)


def test_the_clis_checkpoint_commands_publish_expire_copy_and_download(tinker_server,
                                                                       tmp_path):
  server, tok, _ = tinker_server
  svc = _sdk(server)
  trainer = svc.create_lora_training_client("tiny", rank=3, seed=0).result()
  trainer.forward_backward([_datum(tok)], "cross_entropy").result()
  trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
  state = trainer.save_state("cli").result().path
  rest = tinker.RestClient(base_url=server.url, api_key="tml-local")

  def listed(path):
    run = types.ParsedCheckpointTinkerPath.from_tinker_path(path).training_run_id
    return {c.tinker_path: c for c in rest.list_checkpoints(run).result().checkpoints}.get(path)

  # publish / unpublish (refused when it changes nothing), time to live (set, refused out of
  # range, removed): the CLI's commands for some, the RestClient's calls for the rest
  assert _cli(server, "checkpoint", "publish", state).returncode == 0
  assert listed(state).public
  with pytest.raises(tinker.BadRequestError, match="already public"):
    rest.publish_checkpoint_from_tinker_path(state).result()
  rest.unpublish_checkpoint_from_tinker_path(state).result()
  assert not listed(state).public
  before = time.time()
  assert _cli(server, "checkpoint", "set-ttl", state, "--ttl", "7200").returncode == 0
  assert listed(state).expires_at.timestamp() == pytest.approx(before + 7200, abs=60)
  bad = _cli(server, "checkpoint", "set-ttl", state, "--ttl", "10")
  assert bad.returncode != 0 and "ttl_seconds=10" in bad.stdout + bad.stderr
  assert listed(state).expires_at is not None  # the refused change left it as it was
  rest.set_checkpoint_ttl_from_tinker_path(state, None).result()
  assert listed(state).expires_at is None

  # download: external weights directly; a training state through the CLI's own export
  # (a new session loads it, exports it with a TTL, signs, downloads, deletes the export)
  external = trainer.save_weights_external("cli-export").result().path
  got = {}
  for path in (external, state):
    out = _cli(server, "checkpoint", "download", path, "--output", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    folder = tmp_path / path.replace("tinker://", "").replace("/", "_")
    assert sorted(f.name for f in folder.iterdir()) == ["adapter_config.json",
                                                        "adapter_model.safetensors"]
    got[path] = folder
  run = trainer.model_id
  assert {c.checkpoint_id for c in rest.list_checkpoints(run).result().checkpoints} == {
      "weights/cli", "external_weights/cli-export"}  # the CLI's temporary export is gone
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  a = load_file(got[external] / "adapter_model.safetensors")
  b = load_file(got[state] / "adapter_model.safetensors")
  assert a.keys() == b.keys() and len(a) > 0
  assert any(np.abs(v).max() > 0 for k, v in a.items() if "lora_B" in k)  # trained, not init
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  # a signed URL works once signed, and not when tampered with
  urls = rest.get_external_weights_urls(external).result().urls
  url = urls["adapter_config.json"]
  assert httpx.get(url).json()["r"] == 3
  forged = httpx.get(url.replace("signature=", "signature=0"))
  assert forged.status_code == 403 and "signature" in forged.json()["detail"]

  # copy into a project: a new run holding the same weights
  copy = rest.copy_weights(state, "archive").result()
  assert copy != state and rest.get_weights_info_by_tinker_path(copy).result().lora_rank == 3

  # expiry: a checkpoint past its time is deleted, not listed, not loadable
  rest.set_checkpoint_ttl_from_tinker_path(copy, 3600).result()
  settings = server.root / copy.replace("tinker://", "") / "checkpoint.json"
  stored = json.loads(settings.read_text())
  stored["expires_at"] = "2020-01-01T00:00:00+00:00"
  settings.write_text(json.dumps(stored))
  gone = httpx.post(f"{server.url}/api/v1/weights_info", json={"tinker_path": copy})
  assert gone.status_code == 404 and "expired" in gone.json()["detail"]
  assert not settings.parent.exists()
  # ... and one that expires unseen is swept from the listings
  other = rest.copy_weights(external, "archive", ttl_seconds=3600).result()
  settings = server.root / other.replace("tinker://", "") / "checkpoint.json"
  settings.write_text(settings.read_text().replace(
      json.loads(settings.read_text())["expires_at"], "2020-01-01T00:00:00+00:00"))
  everyone = rest.list_user_checkpoints(limit=1000).result().checkpoints
  assert state in {c.tinker_path for c in everyone}
  assert other not in {c.tinker_path for c in everyone} and not settings.parent.exists()

  # a finished session refuses new models
  session = httpx.post(f"{server.url}/api/v1/create_session",
                       json={"tags": [], "user_metadata": None,
                             "sdk_version": "0.38.0"}).json()["session_id"]
  assert httpx.post(f"{server.url}/api/v1/sessions/{session}/finish",
                    json={"reason": {"type": "success"}}).status_code == 200
  refused = httpx.post(f"{server.url}/api/v1/create_model",
                       json={"session_id": session, "model_seq_id": 0, "base_model": "tiny"})
  assert refused.status_code == 400 and "finished" in refused.json()["detail"]


def test_a_custom_loss_runs_client_side_through_the_server(tinker_server):
  # create_custom_loss traces the loss with torch.fx; with the server's client config (no
  # server-side custom losses) the SDK runs it itself between a forward and a backward whose
  # linear loss the server serves: the gradient equals that of the same loss built in
  pytest.importorskip("torch", reason="the SDK traces custom losses with torch: pip install "
                      "-e '.[parity]'")
  server, tok, _ = tinker_server
  svc = _sdk(server)
  data = [_datum(tok), _datum(tok, "Grace Hopper wrote compilers.")]

  def neg_ll(logprobs, weights):
    loss = -(logprobs * weights).sum()
    return loss, {"custom/neg_ll:sum": loss}

  handle = svc.create_custom_loss(neg_ll, input_ranks={"logprobs": 1, "weights": 1}).result()
  assert handle.loss_id is None  # runs client-side
  a = svc.create_lora_training_client("tiny", rank=2, seed=3).result()
  b = svc.create_lora_training_client("tiny", rank=2, seed=3).result()
  custom = a.forward_backward_custom(data, handle).result()
  built_in = b.forward_backward(data, "cross_entropy").result()
  assert custom.metrics["custom/neg_ll:sum"] == pytest.approx(
      built_in.metrics["loss:sum"], rel=1e-5)
  step = types.AdamParams(learning_rate=1e-2)
  a.optim_step(step).result()
  b.optim_step(step).result()
  after_a = a.forward(data, "cross_entropy").result().metrics["loss:sum"]
  after_b = b.forward(data, "cross_entropy").result().metrics["loss:sum"]
  assert after_a == pytest.approx(after_b, rel=1e-5) and after_a < built_in.metrics["loss:sum"]
