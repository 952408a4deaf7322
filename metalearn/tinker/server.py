"""A Tinker-compatible HTTP server: the official SDK (0.38) drives the in-process primitives of
:mod:`metalearn.tinker.client` over its REST contract, unmodified.

  python experiments/serve_tinker.py --base_model=DIR --port=8000
  TINKER_BASE_URL=http://127.0.0.1:8000 TINKER_API_KEY=tml-local python my_tinker_loop.py

Stack: FastAPI on uvicorn. FastAPI reads and writes pydantic models, which the SDK's request and
response types are, so a body is validated by the SDK's own type; uvicorn is the ASGI server
FastAPI is made for, one process, no extra services.

How requests run. Work arrives as *futures*, as in Tinker: a POST returns ``{"request_id"}``
at once and ``/api/v1/retrieve_future`` long-polls for the result (``try_again`` while it
runs). One worker thread executes every request, because one accelerator runs one program at
a time; a training model's requests run in ``seq_id`` order (the SDK numbers them from 1): one
that arrives early waits for its predecessors, a repeated ``seq_id`` (a client's retry) gets
the first submission's future, and one whose predecessor never arrives fails after
``hold_seconds`` with an error saying which ``seq_id`` is missing.

Errors. A malformed body, an unknown model or an out-of-order request is answered with a 4xx
and a JSON ``detail`` the SDK shows (never 408, 409 or 429, which the SDK retries for minutes:
a conflict such as publishing a public checkpoint is a 400); a request that fails while running
completes its future with ``{"error", "category"}``, which the SDK raises as
``RequestFailedError``. Neither changes the server's state: a request runs whole or not at all.

Checkpoints. Besides saving and loading, the routes the SDK's ``RestClient`` and the ``tinker``
CLI reach: listings, delete, publish/unpublish (a flag in the listings: one local user),
time to live (an expired checkpoint is deleted when next listed or named), ``copy_weights``,
``save_weights_external`` (the adapter in PEFT's format) and ``external_weights_urls``, whose
download URLs are signed (HMAC, one hour) and served under ``/files/``: ``tinker checkpoint
download`` works for training and external checkpoints.

Restart. Saved weights live under ``root`` (``tinker://`` paths map to directories there), so a
server restarted on the same ``root`` serves every saved state: ``load_state`` or
``create_training_client_from_state`` continue from it.
"""

import asyncio
import dataclasses
import datetime
import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
from typing import Any, Callable
import uuid

from absl import logging
import fastapi
from fastapi import responses
import pydantic
from tinker import types

from metalearn.tinker import losses
from metalearn.tinker import optimizers
from metalearn.tinker import wire
from metalearn.tinker.client import CHECKPOINT_KINDS
from metalearn.tinker.client import CheckpointNotFound
from metalearn.tinker.client import ServiceClient
from metalearn.tinker.client import TinkerError

PROTO = "application/x-protobuf"
URL_SECONDS = 3600  # how long a signed download URL of external weights stays valid
_USER_ERRORS = (TinkerError, losses.LossError, optimizers.OptimizerError, wire.WireError,
                pydantic.ValidationError, ValueError)


class RequestError(Exception):
  """A request the server refuses before running it (HTTP ``status``)."""

  def __init__(self, status: int, detail: str):
    super().__init__(detail)
    self.status, self.detail = status, detail


@dataclasses.dataclass
class _Future:
  request_id: str
  run: Callable[[], Any]
  model_id: str | None = None
  seq_id: int | None = None
  created: float = dataclasses.field(default_factory=time.monotonic)
  session: str | None = None  # the sampling session whose completions log it joins
  started: bool = False
  done: bool = False
  value: Any = None
  error: tuple[str, str] | None = None  # (message, category)


@dataclasses.dataclass
class _Model:
  model_id: str
  session_id: str
  base_model: str
  trainer: Any
  lora: types.LoraConfig
  optimizer_config: Any
  next_seq: int = 1
  held: dict = dataclasses.field(default_factory=dict)  # seq_id -> _Future
  seen: dict = dataclasses.field(default_factory=dict)  # seq_id -> request_id


class TinkerServer:
  """The server's state and its worker (see the module docstring).

  Args:
    service: the in-process service whose base models and ``root`` the server serves.
    poll_seconds: how long ``retrieve_future`` waits for a result before ``try_again``.
    hold_seconds: how long a request waits for a missing earlier ``seq_id``.
    retrieve_futures: ask the SDK (its client config) to learn of finished samples by
      long-polling ``retrieve_futures`` per sampling session, one poll for many requests.
  """

  def __init__(self, service: ServiceClient, poll_seconds: float = 10.0,
               hold_seconds: float = 120.0, retrieve_futures: bool = True):
    self.service, self.poll_seconds, self.hold_seconds = service, poll_seconds, hold_seconds
    self.retrieve_futures = retrieve_futures
    self.url_key = secrets.token_bytes(32)  # signs download URLs; a restart voids old ones
    self.sessions: dict[str, dict] = {}
    self.models: dict[str, _Model] = {}
    self.samplers: dict[str, Any] = {}
    self.futures: dict[str, _Future] = {}
    self.completions: dict[str, list[tuple[str, str]]] = {}  # session -> (request_id, state)
    self.counts = {"requests": 0, "failed": 0, "refused": 0}
    self.last_request = time.monotonic()
    self._lock = threading.Condition()
    self._queue: queue.Queue = queue.Queue()
    expired = service.delete_expired()
    if expired:
      logging.warning("deleted %d checkpoint(s) whose time to live ran out: %s", len(expired),
                      ", ".join(expired))
    self._worker = threading.Thread(target=self._work, name="tinker-worker", daemon=True)
    self._worker.start()

  # ------------------------------------------------------------------ futures and ordering

  def _work(self):
    while True:
      future = self._queue.get()
      if future is None:
        return
      with self._lock:
        if future.done:  # cancelled while queued
          continue
        future.started = True
      try:
        value, error = future.run(), None
      except _USER_ERRORS as e:
        value, error = None, (f"{type(e).__name__}: {e}", "user")
      except Exception as e:  # pylint: disable=broad-except
        logging.exception("request %s failed", future.request_id)
        value, error = None, (f"{type(e).__name__}: {e}", "server")
      with self._lock:
        future.value, future.error, future.done = value, error, True
        self.counts["failed"] += error is not None
        self._log_completion(future)
        self._lock.notify_all()

  def _log_completion(self, future: _Future) -> None:
    if future.session is not None:
      self.completions.setdefault(future.session, []).append(
          (future.request_id, "failed" if future.error else "finished"))

  def cancel(self, request_id: str) -> bool:
    """Cancels a request that has not started (its future fails as cancelled); one running
    or done is left as it is. Returns whether it was cancelled."""
    with self._lock:
      if request_id not in self.futures:
        raise RequestError(404, f"request_id {request_id!r} is unknown to this server")
      future = self.futures[request_id]
      if future.done or future.started:
        return False
      # a held request keeps its place in its model's order; the worker skips it
      future.done, future.error = True, ("cancelled before it ran", "user")
      self._log_completion(future)
      self._lock.notify_all()
      return True

  def stop(self):
    self._queue.put(None)
    self._worker.join(timeout=30)

  def submit(self, run: Callable[[], Any], model_id: str | None = None,
             seq_id: int | None = None, session: str | None = None) -> str:
    """A future for ``run``; with ``model_id`` and ``seq_id``, in that model's order; with
    ``session``, its completion is logged for ``retrieve_futures``."""
    with self._lock:
      self.counts["requests"] += 1
      if model_id is not None and seq_id is not None:
        model = self._model(model_id)
        if seq_id in model.seen:  # a retry of a request already taken
          return model.seen[seq_id]
        if seq_id < model.next_seq:
          raise RequestError(400, f"model {model_id}: seq_id {seq_id} was already run and is "
                             f"no longer known; the next is {model.next_seq}")
      future = _Future(uuid.uuid4().hex, run, model_id, seq_id, session=session)
      self.futures[future.request_id] = future
      if model_id is None or seq_id is None:
        self._queue.put(future)
        return future.request_id
      model.seen[seq_id] = future.request_id
      model.held[seq_id] = future
      while model.next_seq in model.held:
        self._queue.put(model.held.pop(model.next_seq))
        model.next_seq += 1
      return future.request_id

  def model(self, model_id: str) -> _Model:
    """The model ``model_id`` (a 404 if there is none)."""
    with self._lock:
      return self._model(model_id)

  def add_model(self, model: _Model) -> None:
    with self._lock:
      self.models[model.model_id] = model

  def add_sampler(self, sampling_session_id: str, sampler) -> None:
    with self._lock:
      self.samplers[sampling_session_id] = sampler

  def finish_session(self, session_id: str, reason: str) -> None:
    """Marks the session finished (the first reason stays) and drops its models and samplers
    from memory; their saved checkpoints stay. Requests already queued still run."""
    with self._lock:
      session = self.session(session_id)
      session.setdefault("finished", reason)
      prefix = f"{session_id}:"
      for table in (self.models, self.samplers):
        for key in [k for k in table if k.startswith(prefix)]:
          del table[key]

  def session(self, session_id: str, open_only: bool = False) -> dict:
    """The session ``session_id`` (404 if unknown; 400 if ``open_only`` and finished)."""
    with self._lock:
      if session_id not in self.sessions:
        raise RequestError(404, f"session {session_id!r} is unknown to this server (create one "
                           "with create_session; a restarted server forgets sessions)")
      session = self.sessions[session_id]
      if open_only and "finished" in session:
        raise RequestError(400, f"session {session_id!r} was finished "
                           f"({session['finished']}): start a new ServiceClient")
      return session

  def sign(self, relpath: str, expires: int) -> str:
    return hmac.new(self.url_key, f"{relpath}\n{expires}".encode(), hashlib.sha256).hexdigest()

  def _model(self, model_id: str) -> _Model:
    if model_id not in self.models:
      raise RequestError(404, f"model_id {model_id!r} is not a model of this server (create "
                         "it with create_lora_training_client; a restarted server keeps saved "
                         "states, not models: load one with create_training_client_from_state)")
    return self.models[model_id]

  def _expire_held(self, future: _Future) -> None:
    """Fails ``future`` if it has waited too long for an earlier ``seq_id``."""
    model = self.models.get(future.model_id)
    if (model is None or future.seq_id not in model.held
        or time.monotonic() - future.created < self.hold_seconds):
      return
    future.done = True  # it keeps its place in the order; the worker skips it
    future.error = (f"model {future.model_id}: seq_id {future.seq_id} waited "
                    f"{self.hold_seconds:.0f} s for seq_id {model.next_seq}, which never "
                    "arrived", "user")
    self.counts["failed"] += 1

  def completed_since(self, session: str, cursor: int, timeout: float
                      ) -> tuple[list[tuple[str, str]], int]:
    """The completions of ``session``'s requests after the first ``cursor``, waiting up to
    ``timeout`` seconds for one; and the new cursor."""
    deadline = time.monotonic() + timeout
    with self._lock:
      while True:
        log = self.completions.get(session, [])
        if cursor < 0 or cursor > len(log):
          raise RequestError(400, f"prev_cursor {cursor} is not a cursor this server gave "
                             f"for sampling session {session!r} (0..{len(log)})")
        left = deadline - time.monotonic()
        if len(log) > cursor or left <= 0:
          return log[cursor:], len(log)
        self._lock.wait(min(left, 1.0))

  def wait(self, request_id: str, timeout: float) -> _Future:
    """The future once done, or still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with self._lock:
      if request_id not in self.futures:
        raise RequestError(404, f"request_id {request_id!r} is unknown to this server (a "
                           "restarted server forgets requests in flight: submit it again)")
      future = self.futures[request_id]
      while not future.done:
        self._expire_held(future)
        left = deadline - time.monotonic()
        if future.done or left <= 0:
          break
        self._lock.wait(min(left, 1.0))
      return future


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _dump(value) -> Any:
  if isinstance(value, pydantic.BaseModel):
    return value.model_dump(mode="json", exclude_none=True)
  return value


def _refusal(detail: str, status: int) -> responses.JSONResponse:
  # The SDK retries 408, 409, 429 and 5xx for minutes; a refusal that a retry cannot change is
  # a 4xx outside those, and says so in the header its HTTP layer obeys.
  headers = {"x-should-retry": "false"} if status < 500 else {}
  return responses.JSONResponse({"detail": detail}, status_code=status, headers=headers)


def make_app(server: TinkerServer) -> fastapi.FastAPI:
  """The FastAPI application serving the SDK's routes under ``/api/v1/``."""
  app = fastapi.FastAPI(title="metalearn Tinker-compatible server")
  api = "/api/v1"

  @app.middleware("http")
  async def stamp(request, call_next):
    server.last_request = time.monotonic()
    return await call_next(request)

  @app.exception_handler(RequestError)
  async def refused(request, e: RequestError):  # pylint: disable=unused-argument
    server.counts["refused"] += 1
    return _refusal(e.detail, e.status)

  @app.exception_handler(TinkerError)
  async def tinker_refused(request, e: TinkerError):  # pylint: disable=unused-argument
    server.counts["refused"] += 1
    status = 404 if isinstance(e, CheckpointNotFound) else 400
    return _refusal(str(e), status)

  @app.exception_handler(Exception)
  async def failed(request, e: Exception):
    logging.exception("%s %s failed", request.method, request.url.path)
    return responses.JSONResponse({"detail": f"{type(e).__name__}: {e}"}, status_code=500)

  async def body_of(request: fastapi.Request, cls):
    try:
      data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise RequestError(400, f"the body is not JSON ({e})") from None
    try:
      return cls.model_validate(data)
    except pydantic.ValidationError as e:
      raise RequestError(400, f"not a valid {cls.__name__}: {e}") from None

  async def string_field(request: fastapi.Request, key: str, route: str, example: str) -> str:
    """The string ``key`` of a JSON body whose request type the SDK does not export."""
    try:
      data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise RequestError(400, f"the body is not JSON ({e})") from None
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str):
      raise RequestError(400, f"{route} takes {{'{key}': '{example}'}}")
    return value

  def future(request_id: str, model_id: str | None = None, **extra) -> dict:
    return {"request_id": request_id, "model_id": model_id, **extra}

  # ---------------------------------------------------------------- session and discovery

  @app.get(f"{api}/healthz")
  async def healthz():
    return {"status": "ok"}

  @app.post(f"{api}/client/config")
  async def client_config():
    return types.ClientConfigResponse(
        pjwt_auth_enabled=False, use_pyqwest_transport=False, proto_compress_fwdbwd=False,
        parallel_fwdbwd_chunks=False,
        sample_use_retrieve_futures=server.retrieve_futures).model_dump(mode="json")

  @app.post(f"{api}/client/dynamic_config")
  async def dynamic_config():
    return types.ClientDynamicConfigResponse().model_dump(mode="json")

  @app.get(f"{api}/get_server_capabilities")
  async def capabilities():
    return server.service.get_server_capabilities().model_dump(mode="json")

  @app.post(f"{api}/create_session")
  async def create_session(request: fastapi.Request):
    req = await body_of(request, types.CreateSessionRequest)
    session_id = uuid.uuid4().hex
    server.sessions[session_id] = {"tags": req.tags, "created": _now(), "heartbeat": _now()}
    return types.CreateSessionResponse(session_id=session_id).model_dump(mode="json")

  @app.post(f"{api}/session_heartbeat")
  async def heartbeat(request: fastapi.Request):
    req = await body_of(request, types.SessionHeartbeatRequest)
    server.session(req.session_id)["heartbeat"] = _now()
    return {"type": "session_heartbeat"}

  @app.post(f"{api}/sessions/{{session_id}}/finish")
  async def finish_session(session_id: str, request: fastapi.Request):
    data = await request.json()
    reason = data.get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, dict) or reason.get("type") not in ("success", "errored",
                                                                  "interrupted"):
      raise RequestError(400, "finish takes {'reason': {'type': 'success' | 'errored' | "
                         "'interrupted'}, 'detail': ...}")
    server.finish_session(session_id, reason["type"])
    return None

  @app.post(f"{api}/telemetry")
  async def telemetry():
    return {"status": "accepted"}

  # ---------------------------------------------------------------- training

  @app.post(f"{api}/create_model")
  async def create_model(request: fastapi.Request):
    req = await body_of(request, types.CreateModelRequest)
    server.session(req.session_id, open_only=True)
    model_id = f"{req.session_id}:train:{req.model_seq_id}"
    if model_id in server.models:
      raise RequestError(400, f"model {model_id} exists (model_seq_id used twice)")
    lora = req.lora_config or types.LoraConfig(rank=32)

    def run():
      trainer = server.service.create_lora_training_client(
          req.base_model, rank=lora.rank, seed=lora.seed, train_mlp=lora.train_mlp,
          train_attn=lora.train_attn, train_unembed=lora.train_unembed,
          optimizer=req.optimizer_config, run_id=model_id).result()
      server.add_model(_Model(model_id, req.session_id, req.base_model, trainer, lora,
                              req.optimizer_config or types.AdamOptimizerConfig()))
      return types.CreateModelResponse(model_id=model_id)

    return future(server.submit(run), model_id)

  @app.post(f"{api}/get_info")
  async def get_info(request: fastapi.Request):
    req = await body_of(request, types.GetInfoRequest)
    model = server.model(req.model_id)
    base = model.trainer.base
    return types.GetInfoResponse(
        model_id=model.model_id, model_name=model.base_model, is_lora=True,
        lora_rank=model.lora.rank, optimizer_config=model.optimizer_config,
        model_data=types.ModelData(arch=base.model.config.arch, model_name=model.base_model,
                                   tokenizer_id=str(base.directory))).model_dump(mode="json")

  @app.post(f"{api}/forward_backward")
  async def forward_backward(request: fastapi.Request):
    body = await request.body()
    if request.headers.get("content-encoding"):
      raise RequestError(415, "compressed bodies are not accepted (this server's client "
                         "config turns the SDK's compression off)")
    try:
      req, forward_only = wire.forward_backward_request(body)
    except wire.WireError as e:
      raise RequestError(400, str(e)) from None
    model = server.model(req.model_id)
    fb = req.forward_backward_input

    def run():
      call = model.trainer.forward if forward_only else model.trainer.forward_backward
      return call(fb.data, fb.loss_fn, fb.loss_fn_config).result()

    return future(server.submit(run, req.model_id, req.seq_id), req.model_id)

  @app.post(f"{api}/optim_step")
  async def optim_step(request: fastapi.Request):
    req = await body_of(request, types.OptimStepRequest)
    model = server.model(req.model_id)
    return future(server.submit(lambda: model.trainer.optim_step(req.optim_params).result(),
                                req.model_id, req.seq_id), req.model_id)

  @app.post(f"{api}/save_weights")
  async def save_weights(request: fastapi.Request):
    req = await body_of(request, types.SaveWeightsRequest)
    model = server.model(req.model_id)
    name = req.path or f"state-{req.seq_id}"
    return future(server.submit(lambda: model.trainer.save_state(name, req.ttl_seconds).result(),
                                req.model_id, req.seq_id), req.model_id)

  @app.post(f"{api}/save_weights_external")
  async def save_weights_external(request: fastapi.Request):
    req = await body_of(request, types.SaveWeightsExternalRequest)
    model = server.model(req.model_id)

    def run():
      saved = model.trainer.save_weights_external(
          req.path, req.ttl_seconds, req.age_encryption_recipients).result()
      return types.SaveWeightsExternalResponseInternal(
          path=saved.path, size_bytes=server.service.checkpoint(saved.path).size_bytes)

    return future(server.submit(run, req.model_id, req.seq_id), req.model_id)

  @app.post(f"{api}/save_weights_for_sampler")
  async def save_for_sampler(request: fastapi.Request):
    req = await body_of(request, types.SaveWeightsForSamplerRequest)
    model = server.model(req.model_id)

    def run():
      if req.path is not None:
        return model.trainer.save_weights_for_sampler(req.path, req.ttl_seconds).result()
      # save_weights_and_get_sampling_client: an unnamed snapshot and a sampling session
      saved = model.trainer.save_weights_for_sampler(f"sampler-{req.seq_id}",
                                                     req.ttl_seconds).result()
      sampler = server.service.create_sampling_client(model_path=saved.path).result()
      sampling_session_id = f"{model.session_id}:sample:{req.sampling_session_seq_id}"
      server.add_sampler(sampling_session_id, sampler)
      return types.SaveWeightsForSamplerResponseInternal(
          path=saved.path, sampling_session_id=sampling_session_id)

    return future(server.submit(run, req.model_id, req.seq_id), req.model_id)

  @app.post(f"{api}/load_weights")
  async def load_weights(request: fastapi.Request):
    req = await body_of(request, types.LoadWeightsRequest)
    if req.model_id is not None:
      model = server.model(req.model_id)
      load = (model.trainer.load_state_with_optimizer if req.optimizer
              else model.trainer.load_state)
      return future(server.submit(lambda: load(req.path).result(), req.model_id, req.seq_id),
                    req.model_id)
    # create_training_client_from_state: a new model from the saved state
    server.session(req.session_id, open_only=True)
    model_id = f"{req.session_id}:train:{req.model_seq_id}"

    def run():
      lora, base_model = server.service.saved_lora(req.path)
      trainer = server.service.create_lora_training_client(
          base_model, rank=lora.rank, train_mlp=lora.train_mlp, train_attn=lora.train_attn,
          train_unembed=lora.train_unembed, optimizer=req.optimizer_config,
          run_id=model_id).result()
      (trainer.load_state_with_optimizer if req.optimizer else trainer.load_state)(
          req.path).result()
      config = types.LoraConfig(rank=lora.rank, train_mlp=lora.train_mlp,
                                train_attn=lora.train_attn, train_unembed=lora.train_unembed)
      server.add_model(_Model(model_id, req.session_id, base_model, trainer, config,
                              req.optimizer_config or types.AdamOptimizerConfig()))
      return types.LoadWeightsResponse(path=req.path, model_id=model_id)

    return future(server.submit(run), model_id)

  @app.post(f"{api}/weights_info")
  async def weights_info(request: fastapi.Request):
    path = await string_field(request, "tinker_path", "weights_info", "tinker://...")
    try:
      lora, base_model = server.service.saved_lora(path)
    except TinkerError as e:
      raise RequestError(404, str(e)) from None
    return types.WeightsInfoResponse(
        base_model=base_model, is_lora=True, lora_rank=lora.rank,
        train_unembed=lora.train_unembed, train_mlp=lora.train_mlp,
        train_attn=lora.train_attn).model_dump(mode="json")

  # ---------------------------------------------------------------- sampling

  @app.post(f"{api}/create_sampling_session")
  async def create_sampling_session(request: fastapi.Request):
    req = await body_of(request, types.CreateSamplingSessionRequest)
    server.session(req.session_id, open_only=True)
    if (req.model_path is None) == (req.base_model is None):
      raise RequestError(400, "create_sampling_session takes one of model_path and base_model")
    try:
      sampler = await asyncio.to_thread(lambda: server.service.create_sampling_client(
          model_path=req.model_path, base_model=req.base_model).result())
    except TinkerError as e:
      raise RequestError(404, str(e)) from None
    sampling_session_id = f"{req.session_id}:sample:{req.sampling_session_seq_id}"
    server.add_sampler(sampling_session_id, sampler)
    return types.CreateSamplingSessionResponse(
        sampling_session_id=sampling_session_id).model_dump(mode="json")

  @app.post(f"{api}/asample")
  async def asample(request: fastapi.Request):
    req = await body_of(request, types.SampleRequest)
    if req.sampling_session_id is not None:
      if req.sampling_session_id not in server.samplers:
        raise RequestError(404, f"sampling session {req.sampling_session_id!r} is unknown")
      sampler = server.samplers[req.sampling_session_id]
    else:
      try:
        sampler = await asyncio.to_thread(lambda: server.service.create_sampling_client(
            model_path=req.model_path, base_model=req.base_model).result())
      except TinkerError as e:
        raise RequestError(404, str(e)) from None
    ids = [uuid.uuid4().hex for _ in range(req.num_samples)]

    def run():
      return sampler.sample(req.prompt, req.num_samples, req.sampling_params,
                            include_prompt_logprobs=bool(req.prompt_logprobs),
                            topk_prompt_logprobs=req.topk_prompt_logprobs).result()

    return future(server.submit(run, session=req.sampling_session_id),
                  sample_sequence_ids=ids)

  # ---------------------------------------------------------------- listings (the CLI's)

  def checkpoints_of(run_id: str) -> list[types.Checkpoint]:
    return server.service.checkpoints(run_id)

  def run_ids() -> list[str]:
    return sorted(set(server.service.run_ids()) | set(server.models))

  def checkpoint_path(run_id: str, checkpoint_id: str) -> str:
    kind, _, name = checkpoint_id.partition("/")
    if kind not in CHECKPOINT_KINDS or not name or "/" in name or name in (".", ".."):
      raise RequestError(400, f"checkpoint_id {checkpoint_id!r}: KIND/NAME with KIND one of "
                         f"{sorted(CHECKPOINT_KINDS)} (as the listings give)")
    return f"tinker://{run_id}/{checkpoint_id}"

  def training_run(run_id: str) -> types.TrainingRun:
    checkpoints = checkpoints_of(run_id)
    if run_id in server.models:
      model = server.models[run_id]
      base_model, rank = model.base_model, model.lora.rank
    elif checkpoints:
      lora, base_model = server.service.saved_lora(checkpoints[-1].tinker_path)
      rank = lora.rank
    else:
      raise RequestError(404, f"training run {run_id!r} is unknown to this server")
    last = lambda label: next((c for c in reversed(checkpoints)
                               if c.checkpoint_type == label), None)
    times = [c.time for c in checkpoints] or [datetime.datetime.now(datetime.timezone.utc)]
    return types.TrainingRun(training_run_id=run_id, base_model=base_model,
                             model_owner="local", is_lora=True, corrupted=False,
                             lora_rank=rank, last_request_time=max(times),
                             last_checkpoint=last("training"),
                             last_sampler_checkpoint=last("sampler"))

  def page(items, limit: int, offset: int):
    if limit < 0 or offset < 0:
      raise RequestError(400, f"limit={limit}, offset={offset}: both >= 0")
    return items[offset:offset + limit], types.Cursor(offset=offset, limit=limit,
                                                      total_count=len(items))

  @app.get(f"{api}/training_runs")
  async def list_runs(limit: int = 20, offset: int = 0):
    runs, cursor = page(run_ids(), limit, offset)
    return types.TrainingRunsResponse(training_runs=[training_run(r) for r in runs],
                                      cursor=cursor).model_dump(mode="json")

  @app.get(f"{api}/training_runs/{{run_id}}")
  async def get_run(run_id: str):
    return training_run(run_id).model_dump(mode="json")

  @app.get(f"{api}/training_runs/{{run_id}}/checkpoints")
  async def list_run_checkpoints(run_id: str):
    training_run(run_id)  # 404 for an unknown run
    return types.CheckpointsListResponse(checkpoints=checkpoints_of(run_id)).model_dump(
        mode="json")

  # the routes under a checkpoint come before the one for the checkpoint itself, whose
  # checkpoint_id (KIND/NAME) is a path that would also match their suffixes
  @app.post(f"{api}/training_runs/{{run_id}}/checkpoints/{{checkpoint_id:path}}/publish")
  async def publish(run_id: str, checkpoint_id: str):
    server.service.set_checkpoint_public(checkpoint_path(run_id, checkpoint_id), True)
    return None

  @app.delete(f"{api}/training_runs/{{run_id}}/checkpoints/{{checkpoint_id:path}}/publish")
  async def unpublish(run_id: str, checkpoint_id: str):
    server.service.set_checkpoint_public(checkpoint_path(run_id, checkpoint_id), False)
    return None

  @app.put(f"{api}/training_runs/{{run_id}}/checkpoints/{{checkpoint_id:path}}/ttl")
  async def set_ttl(run_id: str, checkpoint_id: str, request: fastapi.Request):
    data = await request.json()
    if not isinstance(data, dict) or "ttl_seconds" not in data or not (
        data["ttl_seconds"] is None or type(data["ttl_seconds"]) is int):
      raise RequestError(400, "ttl takes {'ttl_seconds': seconds or null}")
    server.service.set_checkpoint_ttl(checkpoint_path(run_id, checkpoint_id),
                                      data["ttl_seconds"])
    return None

  @app.get(f"{api}/training_runs/{{run_id}}/checkpoints/{{checkpoint_id:path}}"
           "/external_weights_urls")
  async def external_weights_urls(run_id: str, checkpoint_id: str, request: fastapi.Request):
    tinker_path = checkpoint_path(run_id, checkpoint_id)
    if not checkpoint_id.startswith("external_weights/"):
      raise RequestError(400, f"{tinker_path} is not external weights: export them with "
                         "save_weights_external (the CLI's download does)")
    directory = server.service.path(tinker_path) / "peft"
    expires = int(time.time()) + URL_SECONDS
    base = str(request.base_url).rstrip("/")
    urls = {}
    for f in sorted(p for p in directory.rglob("*") if p.is_file()):
      rel = f"{run_id}/{checkpoint_id}/peft/{f.relative_to(directory).as_posix()}"
      urls[f.relative_to(directory).as_posix()] = (
          f"{base}/files/{rel}?expires={expires}&signature={server.sign(rel, expires)}")
    return types.ExternalWeightsUrlsResponse(
        urls=urls, expires=datetime.datetime.fromtimestamp(expires, datetime.timezone.utc)
    ).model_dump(mode="json")

  @app.get("/files/{relpath:path}")
  async def download(relpath: str, expires: int = 0, signature: str = ""):
    if not hmac.compare_digest(server.sign(relpath, expires), signature):
      raise RequestError(403, "this download URL's signature is wrong (or the server was "
                         "restarted since it was signed): ask external_weights_urls again")
    if time.time() > expires:
      raise RequestError(403, "this download URL expired: ask external_weights_urls again")
    path = server.service.root / relpath
    if not path.resolve().is_relative_to(server.service.root.resolve()) or not path.is_file():
      raise RequestError(404, f"{relpath}: no such file (deleted since the URL was signed?)")
    return responses.FileResponse(path)

  @app.delete(f"{api}/training_runs/{{run_id}}/checkpoints/{{checkpoint_id:path}}")
  async def delete_checkpoint(run_id: str, checkpoint_id: str):
    server.service.delete_checkpoint(checkpoint_path(run_id, checkpoint_id))
    return None

  @app.post(f"{api}/copy_weights")
  async def copy_weights(request: fastapi.Request):
    req = await body_of(request, types.CopyWeightsRequest)
    if req.session_id is not None:
      server.session(req.session_id, open_only=True)
      if req.model_seq_id is None:
        raise RequestError(400, "copy_weights with session_id needs its model_seq_id")
      run_id = f"{req.session_id}:train:{req.model_seq_id}"
    elif req.destination_project_id is not None:
      # one user, one project: the copy is a new run whose name records the project
      run_id = f"{req.destination_project_id}:copy:{uuid.uuid4().hex[:12]}"
    else:
      raise RequestError(400, "copy_weights takes destination_project_id, or session_id and "
                         "model_seq_id")
    copied = await asyncio.to_thread(server.service.copy_checkpoint, req.source_path, run_id,
                                     req.ttl_seconds)
    return types.CopyWeightsResponse(tinker_path=copied).model_dump(mode="json")

  @app.get(f"{api}/checkpoints")
  async def list_checkpoints(limit: int = 100, offset: int = 0):
    everything = [c for r in run_ids() for c in checkpoints_of(r)]
    chosen, cursor = page(everything, limit, offset)
    return types.CheckpointsListResponse(checkpoints=chosen, cursor=cursor).model_dump(
        mode="json")

  @app.get(f"{api}/sessions")
  async def list_sessions(limit: int = 20, offset: int = 0):
    chosen, _ = page(sorted(server.sessions), limit, offset)
    return types.ListSessionsResponse(sessions=chosen).model_dump(mode="json")

  @app.get(f"{api}/sessions/{{session_id}}")
  async def get_session(session_id: str):
    if session_id not in server.sessions:
      raise RequestError(404, f"session {session_id!r} is unknown to this server")
    prefix = f"{session_id}:"
    return types.GetSessionResponse(
        training_run_ids=sorted(m for m in server.models if m.startswith(prefix)),
        sampler_ids=sorted(s for s in server.samplers if s.startswith(prefix))).model_dump(
            mode="json")

  @app.get(f"{api}/samplers/{{sampler_id}}")
  async def get_sampler(sampler_id: str):
    if sampler_id not in server.samplers:
      raise RequestError(404, f"sampler {sampler_id!r} is unknown to this server")
    sampler = server.samplers[sampler_id]
    return types.GetSamplerResponse(sampler_id=sampler_id, base_model=sampler.base.name,
                                    model_path=sampler.model_path).model_dump(mode="json")

  # ---------------------------------------------------------------- futures

  @app.post(f"{api}/retrieve_futures")
  async def retrieve_futures(request: fastapi.Request):
    req = await body_of(request, types.FuturesRetrieveRequest)
    session = req.target.sampling_session_id
    if session not in server.samplers:
      raise RequestError(404, f"sampling session {session!r} is unknown")
    timeout = server.poll_seconds if req.timeout is None else min(req.timeout,
                                                                  server.poll_seconds)
    done, cursor = await asyncio.to_thread(server.completed_since, session, req.prev_cursor,
                                           timeout)
    completions = [{"state": state, "request_id": rid} for rid, state in done]
    return {"completions": completions, "cursor": cursor}

  @app.post(f"{api}/cancel_future")
  async def cancel_future(request: fastapi.Request):
    request_id = await string_field(request, "request_id", "cancel_future", "...")
    server.cancel(request_id)
    return None

  @app.post(f"{api}/retrieve_future")
  async def retrieve_future(request: fastapi.Request):
    req = await body_of(request, types.FutureRetrieveRequest)
    done = await asyncio.to_thread(server.wait, req.request_id, server.poll_seconds)
    if not done.done:
      return {"type": "try_again", "request_id": req.request_id, "queue_state": "active"}
    if done.error is not None:
      return {"error": done.error[0], "category": done.error[1]}
    value = done.value
    wants_proto = PROTO in request.headers.get("accept", "")
    if wants_proto and isinstance(value, types.ForwardBackwardOutput):
      return responses.Response(wire.forward_backward_output(value), media_type=PROTO)
    if wants_proto and isinstance(value, types.SampleResponse):
      return responses.Response(wire.sample_response(value), media_type=PROTO)
    if isinstance(value, (types.ForwardBackwardOutput, types.SampleResponse)):
      raise RequestError(406, f"{type(value).__name__} results are sent as protobuf: send "
                         f"'Accept: {PROTO}' (the SDK does)")
    return _dump(value)

  @app.api_route(f"{api}/{{rest:path}}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
  async def unsupported(rest: str, request: fastapi.Request):
    raise RequestError(501, f"{request.method} /api/v1/{rest} is not supported by this server "
                       "(metalearn's Tinker-compatible server serves the SDK's training, "
                       "sampling and checkpoint routes)")

  return app


def serve(server: TinkerServer, host: str = "127.0.0.1", port: int = 8000,
          idle_exit_seconds: float = 0.0, log_level: str = "warning"):
  """Runs the app with uvicorn until interrupted or, with ``idle_exit_seconds > 0``, until no
  request has come for that long (a server a test or a notebook forgets stops by itself)."""
  import uvicorn  # pylint: disable=g-import-not-at-top
  uv = uvicorn.Server(uvicorn.Config(make_app(server), host=host, port=port,
                                     log_level=log_level))
  if idle_exit_seconds > 0:
    def watch():
      while not uv.should_exit:
        time.sleep(min(1.0, idle_exit_seconds))
        if time.monotonic() - server.last_request > idle_exit_seconds:
          logging.warning("no request for %.0f s: stopping", idle_exit_seconds)
          uv.should_exit = True
    threading.Thread(target=watch, name="idle-exit", daemon=True).start()
  uv.run()
  server.stop()
