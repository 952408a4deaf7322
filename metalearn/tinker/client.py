"""Tinker's primitives in-process, over metalearn's decoder LM, with the official SDK's types.

The user's loop is Tinker's::

  service = ServiceClient({"base": "/path/to/hf_model_dir"})
  trainer = service.create_lora_training_client("base", rank=8).result()
  fb = trainer.forward_backward(data, "cross_entropy").result()   # types.ForwardBackwardOutput
  trainer.optim_step(types.AdamParams(learning_rate=1e-4)).result()
  sampler = trainer.save_weights_and_get_sampling_client("step1").result()
  out = sampler.sample(prompt, num_samples=4, sampling_params=types.SamplingParams(...)).result()

Data are ``tinker.types.Datum`` (``model_input``, ``loss_fn_inputs`` as ``TensorData``), results
are the SDK's ``ForwardBackwardOutput``, ``OptimStepResponse``, ``SampleResponse``...; every
call returns a :class:`Future` (already done: the work runs in the caller's process) with
``result()``, ``result_async()`` and ``await``, and each has an ``_async`` twin returning what
the SDK's twin returns (a future, or for ``sample_async``, ``compute_logprobs_async`` and the
client-creating twins the value itself). Creating a client returns a future of it, as SDK 0.38
does: ``create_lora_training_client(...).result()`` or ``await``.

Semantics follow Tinker: ``forward_backward`` adds its gradient to an accumulator (the loss is
a sum over datums and tokens, reported as ``loss:sum``) and ``optim_step`` applies and clears
it, with AdamW at the given ``AdamParams`` (decoupled weight decay, clipping when
``grad_clip_norm > 0``; changing them between steps recompiles nothing). The trained weights
are LoRA adapters (:mod:`metalearn.lm.lora`) over a frozen base model.

Shapes are bucketed (sequence length to a multiple of 32, the number of datums to a power of
two, padded rows and positions masked out of every loss), so a loop compiles a few programs.
"""

import dataclasses
import datetime
import functools
import json
import os
import pathlib
import secrets
import shutil
import tempfile
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar
import uuid

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
from tinker import types
from tinker.types.topk_logprobs import TopkLogprobs

from metalearn import checkpoint as checkpoint_lib
from metalearn.lm import generate
from metalearn.lm import hf
from metalearn.lm import lora as lora_lib
from metalearn.lm import tokenizer as tok_lib
from metalearn.tinker import losses
from metalearn.tinker import optimizers

T = TypeVar("T")
BUCKET = 32
# a checkpoint's directory under ``root``/RUN/ by kind, and the kind's name in Tinker's listings
CHECKPOINT_KINDS = {"weights": "training", "sampler_weights": "sampler",
                    "external_weights": "external"}
TTL_SECONDS = (3600, 10 * 365 * 86400)  # Tinker's bounds on a checkpoint's time to live
_SETTINGS = "checkpoint.json"  # a checkpoint's expiry and visibility, beside its weights


class TinkerError(ValueError):
  """A request that cannot be served: named, with the fix."""


class Future(Generic[T]):
  """A finished request's result (the SDK's ``APIFuture`` shape)."""

  def __init__(self, value: T):
    self._value = value

  def result(self, timeout: float | None = None) -> T:
    del timeout
    return self._value

  async def result_async(self, timeout: float | None = None) -> T:
    del timeout
    return self._value

  def __await__(self):
    return self.result_async().__await__()


def _bucket(n: int, to: int = BUCKET) -> int:
  return -(-n // to) * to


def _pow2(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


def _tokens(model_input: types.ModelInput, what: str) -> list[int]:
  try:
    return model_input.to_ints()
  except Exception as e:  # an image chunk, say: the SDK raises a plain ValueError
    raise TinkerError(f"{what}: only token chunks are supported ({e})") from None


@dataclasses.dataclass
class _Base:
  """A loaded base model and its tokenizer."""
  name: str
  directory: pathlib.Path
  model: Any
  tokenizer: tok_lib.Tokenizer | None


class ServiceClient:
  """Creates training and sampling clients over local HF-format base models.

  Args:
    base_models: ``{name: directory}`` of the models ``base_model`` may name (a name that is
      an existing directory is accepted as such).
    root: where ``save_state`` / ``save_weights_for_sampler`` write (``tinker://`` paths map to
      directories under it); a temporary directory by default.
  """

  def __init__(self, base_models: Mapping[str, str | os.PathLike] | None = None,
               root: str | os.PathLike | None = None):
    self._dirs = {k: pathlib.Path(v) for k, v in (base_models or {}).items()}
    self._bases: dict[str, _Base] = {}
    self.root = pathlib.Path(root or tempfile.mkdtemp(prefix="metalearn-tinker-"))
    self.expired_deleted = 0  # checkpoints deleted because their time to live ran out

  def _base(self, name: str) -> _Base:
    if name not in self._bases:
      directory = self._dirs.get(name) or pathlib.Path(name)
      if not (directory / "config.json").exists():
        raise TinkerError(f"base_model {name!r} is not one of {sorted(self._dirs)} nor an "
                          "HF-format model directory")
      tok = (tok_lib.load(directory) if (directory / "tokenizer.json").exists() else None)
      model = hf.load(directory)
      if tok is not None:
        tok_lib.check_matches(tok, model.config, str(directory))
      self._bases[name] = _Base(name, directory, model, tok)
    return self._bases[name]

  def get_server_capabilities(self) -> types.GetServerCapabilitiesResponse:
    return types.GetServerCapabilitiesResponse(
        supported_models=[types.SupportedModel(model_name=n) for n in sorted(self._dirs)])

  def create_lora_training_client(self, base_model: str, rank: int = 32,
                                  seed: int | None = None, train_mlp: bool = True,
                                  train_attn: bool = True, train_unembed: bool = True,
                                  user_metadata: dict | None = None,
                                  optimizer: types.OptimizerConfig | None = None, *,
                                  run_id: str | None = None) -> "TrainingClient":
    """A LoRA training client; ``optimizer`` picks what ``optim_step`` runs
    (:mod:`metalearn.tinker.optimizers`: adamw by default, any optax optimizer, a learned
    optimizer); ``run_id`` names its saves' ``tinker://`` directory (default: a fresh id)."""
    del user_metadata
    config = lora_lib.LoRAConfig(rank=rank, train_mlp=train_mlp, train_attn=train_attn,
                                 train_unembed=train_unembed)
    family = optimizers.make(optimizer)
    return Future(TrainingClient(self, self._base(base_model), config,
                                 0 if seed is None else seed, family, run_id))

  async def create_lora_training_client_async(self, *args, **kwargs) -> "TrainingClient":
    return self.create_lora_training_client(*args, **kwargs).result()

  def create_sampling_client(self, model_path: str | None = None,
                             base_model: str | None = None) -> Future["SamplingClient"]:
    """A sampler of saved weights (``model_path``, a ``tinker://`` path from
    ``save_weights_for_sampler``) or of a base model."""
    if model_path is not None:
      path = self.path(model_path)
      base_name, config = _read_meta(path)
      base = self._base(base_name)
      template = jax.eval_shape(lambda: lora_lib.init(base.model.config, config,
                                                      jax.random.key(0)))
      return Future(SamplingClient(base, _load_npz(path / "lora.npz", template), config,
                                   model_path))
    if base_model is None:
      raise TinkerError("create_sampling_client needs model_path or base_model")
    return Future(SamplingClient(self._base(base_model), None, None))

  def saved_lora(self, tinker_path: str) -> tuple[lora_lib.LoRAConfig, str]:
    """The LoRA config and base model of the state saved at ``tinker_path``."""
    base_name, config = _read_meta(self.path(tinker_path))
    return config, base_name

  def path(self, tinker_path: str) -> pathlib.Path:
    """The directory a ``tinker://`` path names (refused if outside ``root``, missing or
    expired; an expired checkpoint is deleted)."""
    if not tinker_path.startswith("tinker://"):
      raise TinkerError(f"{tinker_path!r} is not a tinker:// path (save_state and "
                        "save_weights_for_sampler return them)")
    path = self.root / tinker_path[len("tinker://"):]
    if not path.resolve().is_relative_to(self.root.resolve()):
      raise TinkerError(f"{tinker_path!r} points outside the server's root")
    if not path.exists():
      raise CheckpointNotFound(f"{tinker_path}: nothing was saved there (under {self.root})")
    expires = _settings(path)["expires_at"]
    if expires is not None and _now() >= expires:
      self._delete_expired(path, tinker_path)
      raise CheckpointNotFound(f"{tinker_path} expired at {expires.isoformat()} and was "
                               "deleted")
    return path

  # ---------------------------------------------------------------- checkpoint management

  def checkpoint(self, tinker_path: str) -> types.Checkpoint:
    """The listing entry of the checkpoint at ``tinker_path``
    (``tinker://RUN/KIND/NAME``, KIND one of :data:`CHECKPOINT_KINDS`)."""
    parsed = _parse_checkpoint_path(tinker_path)
    path = self.path(tinker_path)
    settings = _settings(path)
    meta = path / "metalearn.json"
    return types.Checkpoint(
        checkpoint_id=parsed.checkpoint_id, checkpoint_type=parsed.checkpoint_type,
        time=datetime.datetime.fromtimestamp(meta.stat().st_mtime, datetime.timezone.utc),
        tinker_path=tinker_path, public=settings["public"],
        expires_at=settings["expires_at"], user_metadata=settings["user_metadata"],
        size_bytes=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))

  def checkpoints(self, run_id: str) -> list[types.Checkpoint]:
    """Run ``run_id``'s checkpoints, oldest first (expired ones are deleted, not listed)."""
    out = []
    for kind in CHECKPOINT_KINDS:
      for meta in sorted((self.root / run_id / kind).glob("*/metalearn.json")):
        try:
          out.append(self.checkpoint(f"tinker://{run_id}/{kind}/{meta.parent.name}"))
        except CheckpointNotFound:  # expired: path() deleted it and counted it
          continue
    return sorted(out, key=lambda c: c.time)

  def run_ids(self) -> list[str]:
    """The runs with a checkpoint under ``root``."""
    return sorted(d.name for d in self.root.iterdir()
                  if d.is_dir() and any(d.glob("*/*/metalearn.json")))

  def set_checkpoint_ttl(self, tinker_path: str, ttl_seconds: int | None) -> None:
    """The checkpoint expires ``ttl_seconds`` from now (None: never); then it is deleted."""
    _check_ttl(ttl_seconds)
    path = self.path(tinker_path)
    expires = (None if ttl_seconds is None
               else _now() + datetime.timedelta(seconds=ttl_seconds))
    _write_settings(path, expires_at=expires)

  def set_checkpoint_public(self, tinker_path: str, public: bool) -> None:
    """Marks the checkpoint public or private (refused if it already is)."""
    path = self.path(tinker_path)
    if _settings(path)["public"] == public:
      raise CheckpointStateError(f"{tinker_path} is already {'public' if public else 'private'}")
    _write_settings(path, public=public)

  def delete_checkpoint(self, tinker_path: str) -> None:
    _parse_checkpoint_path(tinker_path)
    shutil.rmtree(self.path(tinker_path))

  def copy_checkpoint(self, tinker_path: str, run_id: str,
                      ttl_seconds: int | None = None) -> str:
    """A copy of the checkpoint, of the same kind and name, in run ``run_id``; returns its
    path. The copy is private and expires after ``ttl_seconds`` (the source's expiry is not
    inherited)."""
    _check_ttl(ttl_seconds)
    parsed = _parse_checkpoint_path(tinker_path)
    source = self.path(tinker_path)
    if not run_id or "/" in run_id or run_id in (".", ".."):
      raise TinkerError(f"run id {run_id!r}: a non-empty name without '/'")
    copy = f"tinker://{run_id}/{parsed.checkpoint_id}"
    target = self.root / run_id / parsed.checkpoint_id
    if target.exists():
      raise CheckpointStateError(f"{copy} exists already")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    (partial / _SETTINGS).unlink(missing_ok=True)
    partial.rename(target)
    if ttl_seconds is not None:
      self.set_checkpoint_ttl(copy, ttl_seconds)
    return copy

  def delete_expired(self) -> list[str]:
    """Deletes every expired checkpoint under ``root``; returns their paths."""
    gone = []
    for settings in self.root.glob(f"*/*/*/{_SETTINGS}"):
      path = settings.parent
      expires = _settings(path)["expires_at"]
      if expires is not None and _now() >= expires:
        tinker_path = "tinker://" + path.relative_to(self.root).as_posix()
        self._delete_expired(path, tinker_path)
        gone.append(tinker_path)
    return gone

  def _delete_expired(self, path: pathlib.Path, tinker_path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    self.expired_deleted += 1
    logging.info("deleted expired checkpoint %s", tinker_path)


class CheckpointNotFound(TinkerError):
  """A ``tinker://`` path with nothing saved there (never, deleted or expired)."""


class CheckpointStateError(TinkerError):
  """A checkpoint change that conflicts with its state (already public, already exists)."""


def _now() -> datetime.datetime:
  return datetime.datetime.now(datetime.timezone.utc)


def _check_ttl(ttl_seconds: int | None) -> None:
  lo, hi = TTL_SECONDS
  if ttl_seconds is not None and not lo <= ttl_seconds <= hi:
    raise TinkerError(f"ttl_seconds={ttl_seconds}: between {lo} (1 hour) and {hi} (10 years), "
                      "or None for no expiry")


def _parse_checkpoint_path(tinker_path: str) -> types.ParsedCheckpointTinkerPath:
  try:
    return types.ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
  except ValueError:
    raise TinkerError(f"{tinker_path!r} is not a checkpoint path: tinker://RUN/KIND/NAME with "
                      f"KIND one of {sorted(CHECKPOINT_KINDS)}") from None


def _settings(path: pathlib.Path) -> dict:
  """A checkpoint's expiry, visibility and user metadata (defaults if never set)."""
  out = {"public": False, "expires_at": None, "user_metadata": None}
  f = path / _SETTINGS
  if f.exists():
    try:
      stored = json.loads(f.read_text())
    except json.JSONDecodeError as e:
      raise TinkerError(f"{f} is corrupt ({e}): delete it to make the checkpoint private "
                        "and never expiring") from None
    out.update(stored)
    if out["expires_at"] is not None:
      out["expires_at"] = datetime.datetime.fromisoformat(out["expires_at"])
  return out


def _write_settings(path: pathlib.Path, **changes) -> None:
  settings = {**_settings(path), **changes}
  if isinstance(settings["expires_at"], datetime.datetime):
    settings["expires_at"] = settings["expires_at"].isoformat()
  tmp = path / (_SETTINGS + ".partial")
  tmp.write_text(json.dumps(settings))
  os.replace(tmp, path / _SETTINGS)


def _read_meta(path: pathlib.Path) -> tuple[str, lora_lib.LoRAConfig]:
  meta = json.loads((path / "metalearn.json").read_text())
  return meta["base_model"], lora_lib.LoRAConfig(**meta["lora"])


def _save_npz(path: pathlib.Path, tree) -> None:
  """``tree``'s leaves in one ``.npz`` keyed by their paths (written whole, then renamed)."""
  flat = {k: np.asarray(v) for k, v in checkpoint_lib.flatten_by_path(tree).items()}
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.stem + ".partial.npz")
  np.savez(tmp, **flat)
  os.replace(tmp, path)


def _load_npz(path: pathlib.Path, template):
  """The tree of ``template``'s structure saved by :func:`_save_npz` at ``path``."""
  with np.load(path) as f:
    return jax.tree.map(jnp.asarray, checkpoint_lib.unflatten_by_path(
        template, {k: f[k] for k in f.files}))


def _pad_data(data: Sequence[types.Datum], loss_fn: "str | losses.Loss | None",
              need_targets: bool = True):
  """``(tokens, mask, inputs, lengths)``: arrays ``[B', S']`` of the data, and its lengths."""
  if not data:
    raise TinkerError("forward_backward needs at least one Datum")
  rows, length = [], 0
  for i, d in enumerate(data):
    tokens = _tokens(d.model_input, f"datum {i}")
    inputs = {k: np.asarray(v.to_numpy()) for k, v in d.loss_fn_inputs.items()}
    if loss_fn is not None:
      losses.check_inputs(loss_fn, inputs, f"datum {i}")
    if need_targets and "target_tokens" not in inputs:
      raise TinkerError(f"datum {i}: loss_fn_inputs needs target_tokens")
    for k, v in inputs.items():
      if v.shape != (len(tokens),):
        raise TinkerError(f"datum {i}: loss_fn_inputs[{k!r}] has shape {list(v.shape)}, "
                          f"model_input has {len(tokens)} tokens: each input has one entry "
                          "per position (position i predicts token i + 1)")
    rows.append((tokens, inputs))
    length = max(length, len(tokens))
  b, s = _pow2(len(rows)), _bucket(length)
  tokens = np.zeros((b, s), np.int32)
  mask = np.zeros((b, s), np.float32)
  keys = sorted({k for _, inputs in rows for k in inputs})
  arrays = {k: np.zeros((b, s), np.int32 if k == "target_tokens" else np.float32)
            for k in keys}
  for i, (t, inputs) in enumerate(rows):
    tokens[i, :len(t)] = t
    mask[i, :len(t)] = 1
    for k, v in inputs.items():
      arrays[k][i, :len(t)] = v
  return tokens, mask, arrays, [len(t) for t, _ in rows]


def _commit(tree):
  return jax.device_put(tree, jax.devices()[0])


@jax.jit
def _accumulate(total, grads):
  return jax.tree.map(jnp.add, total, grads)


class TrainingClient:
  """LoRA fine-tuning of one base model (see the module docstring)."""

  def __init__(self, service: ServiceClient, base: _Base, config: lora_lib.LoRAConfig,
               seed: int, family: "optimizers.Family | None" = None,
               run_id: str | None = None):
    self.service, self.base, self.config = service, base, config
    self.run_id = run_id or uuid.uuid4().hex[:12]
    self.family = family or optimizers.make(None)
    # Every array of the client's state is committed to the device, as the compiled steps'
    # outputs are: inputs placed alike keep each step at one compiled program.
    self.params = _commit(lora_lib.init(base.model.config, config, jax.random.key(seed)))
    self.opt_state = _commit(self.family.init(self.params))
    self._last_loss = _commit(jnp.float32(0))
    self._grads = _commit(jax.tree.map(jnp.zeros_like, self.params))
    self._graphdef, self._base_state = nnx.split(base.model)
    self._compiled: dict = {}

  # ---------------------------------------------------------------------- the model call

  def _logprobs_fn(self):
    graphdef, scale = self._graphdef, self.config.scale

    def target_logprobs(params, base_state, tokens, mask, targets):
      model = nnx.merge(graphdef, base_state)
      adapters = lora_lib.Adapters(params, jnp.zeros(tokens.shape[0], jnp.int32), scale)
      logits, _ = model(tokens, attention_mask=mask > 0, adapters=adapters)
      logp = jax.nn.log_softmax(logits, axis=-1)
      return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]

    return target_logprobs

  def _loss_fn(self, loss_fn: "str | losses.Loss", backward: bool):
    """The compiled loss of ``loss_fn`` (with its gradient when ``backward``), one program
    per loss and padded shape."""
    key = (loss_fn, backward)
    if key not in self._compiled:
      target_logprobs = self._logprobs_fn()

      def total(params, base_state, tokens, mask, inputs, config):
        logp = target_logprobs(params, base_state, tokens, mask, inputs["target_tokens"])
        per_token = losses.token_losses(loss_fn, logp, inputs, config) * mask
        return jnp.sum(per_token), (logp, per_token)

      self._compiled[key] = jax.jit(jax.value_and_grad(total, has_aux=True) if backward
                                    else total)
    return self._compiled[key]

  def _run(self, data, loss_fn, loss_fn_config, backward: bool):
    config = losses.config_for(loss_fn, loss_fn_config)
    tokens, mask, inputs, lengths = _pad_data(data, loss_fn)
    args = (self.params, self._base_state, tokens, mask, inputs, config)
    if backward:
      (loss, (logp, per_token)), grads = self._loss_fn(loss_fn, True)(*args)
    else:
      loss, (logp, per_token) = self._loss_fn(loss_fn, False)(*args)
    if not bool(jnp.isfinite(loss)):
      raise TinkerError(f"{losses.get(loss_fn).name}: the loss is not finite ({float(loss)}); "
                        "nothing was accumulated (check the data's logprobs and advantages)")
    if backward:
      self._grads = _accumulate(self._grads, grads)
      self._last_loss = loss
    logp, per_token = np.asarray(logp), np.asarray(per_token)
    outputs = [{"logprobs": types.TensorData.from_numpy(logp[i, :n].astype(np.float32)),
                "elementwise_loss": types.TensorData.from_numpy(
                    per_token[i, :n].astype(np.float32))} for i, n in enumerate(lengths)]
    return types.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord",
                                       loss_fn_outputs=outputs,
                                       metrics={"loss:sum": float(loss)})

  def forward(self, data: Sequence[types.Datum], loss_fn: "str | losses.Loss",
              loss_fn_config: Mapping[str, float] | None = None
              ) -> Future[types.ForwardBackwardOutput]:
    """The loss and per-token log-probabilities, no gradient."""
    return Future(self._run(data, loss_fn, loss_fn_config, backward=False))

  def forward_backward(self, data: Sequence[types.Datum], loss_fn: "str | losses.Loss",
                       loss_fn_config: Mapping[str, float] | None = None
                       ) -> Future[types.ForwardBackwardOutput]:
    """The loss, its per-token outputs, and its gradient added to the accumulator.
    ``loss_fn``: a built-in loss's name, or a :class:`~metalearn.tinker.losses.Loss` written
    in JAX (compiled into the same single forward + backward pass)."""
    return Future(self._run(data, loss_fn, loss_fn_config, backward=True))

  def forward_backward_custom(
      self, data: Sequence[types.Datum],
      loss_fn: Callable[[Sequence[types.Datum], list[jax.Array]], tuple[jax.Array, dict]]
  ) -> Future[types.ForwardBackwardOutput]:
    """A loss written in JAX over each datum's target log-probabilities. ``loss_fn(data,
    logprobs) -> (loss, metrics)``, ``logprobs[i]`` ``[len(datum i)]``. As in Tinker, the
    model runs twice, both compiled (one program each per padded shape): a forward pass gives
    the log-probabilities, ``loss_fn`` and its gradient with respect to them run as written,
    and a forward + backward pass takes that gradient as its cotangent. The gradient is
    accumulated."""
    tokens, mask, inputs, lengths = _pad_data(data, None)
    if "custom" not in self._compiled:
      target_logprobs = self._logprobs_fn()

      def pullback(params, base_state, tokens, mask, targets, cotangent):
        _, vjp = jax.vjp(lambda p: target_logprobs(p, base_state, tokens, mask, targets),
                         params)
        return vjp(cotangent)[0]

      self._compiled["custom"] = (jax.jit(target_logprobs), jax.jit(pullback))
    forward, pullback = self._compiled["custom"]
    args = (self._base_state, tokens, mask, inputs["target_tokens"])
    logp = forward(self.params, *args)

    def user_loss(logp):
      return loss_fn(data, [logp[i, :n] for i, n in enumerate(lengths)])

    (loss, metrics), d_logp = jax.value_and_grad(user_loss, has_aux=True)(logp)
    grads = pullback(self.params, *args, d_logp)
    self._grads = _accumulate(self._grads, grads)
    self._last_loss = loss
    logp = np.asarray(logp)
    outputs = [{"logprobs": types.TensorData.from_numpy(logp[i, :n].astype(np.float32))}
               for i, n in enumerate(lengths)]
    return Future(types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs,
        metrics={"loss:sum": float(loss), **{k: float(v) for k, v in metrics.items()}}))

  def optim_step(self, adam_params: types.OptimParams) -> Future[types.OptimStepResponse]:
    """Applies the accumulated gradient and clears it: AdamW at ``types.AdamParams``, or the
    model's optimizer family at its ``OptimParamsBase(type=...)``."""
    hp = _commit(self.family.hyper(adam_params))
    if "step" not in self._compiled:
      def step(params, opt_state, grads, hp, loss):
        params, opt_state, norm = self.family.update(params, opt_state, grads, hp, loss)
        return params, opt_state, norm, jax.tree.map(jnp.zeros_like, grads)
      self._compiled["step"] = jax.jit(step)
    self.params, self.opt_state, norm, self._grads = self._compiled["step"](
        self.params, self.opt_state, self._grads, hp, self._last_loss)
    return Future(types.OptimStepResponse(metrics={"grad_norm:mean": float(norm)}))

  # ---------------------------------------------------------------------- beyond Tinker

  def gradients(self) -> dict:
    """The gradient accumulated since the last ``optim_step``, as a pytree of the adapters'
    shapes (``{"layers": {"q": {"a", "b"}, ...}, "head": ...}``)."""
    return jax.tree.map(np.asarray, self._grads)

  def hidden_states(self, data: Sequence[types.Datum]) -> list[np.ndarray]:
    """Each datum's final (normed) hidden states ``[len, hidden_size]`` under the current
    adapters."""
    tokens, mask, _, lengths = _pad_data(data, None, need_targets=False)
    if "hidden" not in self._compiled:
      graphdef, scale = self._graphdef, self.config.scale

      def hidden(params, base_state, tokens, mask):
        model = nnx.merge(graphdef, base_state)
        adapters = lora_lib.Adapters(params, jnp.zeros(tokens.shape[0], jnp.int32), scale)
        return model(tokens, attention_mask=mask > 0, adapters=adapters, return_hidden=True)[0]
      self._compiled["hidden"] = jax.jit(hidden)
    h = np.asarray(self._compiled["hidden"](self.params, self._base_state, tokens, mask))
    return [h[i, :n] for i, n in enumerate(lengths)]

  # ---------------------------------------------------------------------- state

  def _tinker_path(self, kind: str, name: str) -> tuple[str, pathlib.Path]:
    if not name or "/" in name or name in (".", ".."):
      raise TinkerError(f"checkpoint name {name!r}: a non-empty name without '/'")
    rel = f"{self.run_id}/{kind}/{name}"
    return f"tinker://{rel}", self.service.root / rel

  def _write(self, path: pathlib.Path, with_optimizer: bool) -> None:
    _save_npz(path / "lora.npz", self.params)
    if with_optimizer:
      _save_npz(path / "optimizer.npz", self.opt_state)
    (path / "metalearn.json").write_text(json.dumps(
        {"base_model": self.base.name, "lora": dataclasses.asdict(self.config)}))

  def _saved(self, tinker_path: str, path: pathlib.Path, ttl_seconds: int | None) -> None:
    (path / _SETTINGS).unlink(missing_ok=True)  # a save under an old name starts afresh
    if ttl_seconds is not None:
      self.service.set_checkpoint_ttl(tinker_path, ttl_seconds)

  def save_state(self, name: str, ttl_seconds: int | None = None
                 ) -> Future[types.SaveWeightsResponse]:
    """LoRA weights and optimizer state, for ``load_state_with_optimizer``; deleted after
    ``ttl_seconds`` if given."""
    _check_ttl(ttl_seconds)
    tinker_path, path = self._tinker_path("weights", name)
    self._write(path, with_optimizer=True)
    self._saved(tinker_path, path, ttl_seconds)
    return Future(types.SaveWeightsResponse(path=tinker_path))

  def load_state(self, path: str) -> Future[types.LoadWeightsResponse]:
    """The saved LoRA weights; the optimizer starts afresh."""
    return Future(self._load(path, with_optimizer=False))

  def load_state_with_optimizer(self, path: str) -> Future[types.LoadWeightsResponse]:
    return Future(self._load(path, with_optimizer=True))

  def _load(self, tinker_path: str, with_optimizer: bool) -> types.LoadWeightsResponse:
    path = self.service.path(tinker_path)
    base_name, config = _read_meta(path)
    if base_name != self.base.name or config != self.config:
      raise TinkerError(f"{tinker_path} holds a rank-{config.rank} adapter of {base_name!r}; "
                        f"this client trains rank {self.config.rank} on {self.base.name!r}")
    if with_optimizer and not (path / "optimizer.npz").exists():
      raise TinkerError(f"{tinker_path} was saved without optimizer state "
                        "(save_weights_for_sampler): use load_state")
    self.params = _commit(_load_npz(path / "lora.npz", self.params))
    self.opt_state = _commit(_load_npz(path / "optimizer.npz", self.opt_state)
                             if with_optimizer else self.family.init(self.params))
    self._grads = _commit(jax.tree.map(jnp.zeros_like, self.params))
    return types.LoadWeightsResponse(path=tinker_path)

  def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None
                               ) -> Future[types.SaveWeightsForSamplerResponse]:
    _check_ttl(ttl_seconds)
    tinker_path, path = self._tinker_path("sampler_weights", name)
    self._write(path, with_optimizer=False)
    lora_lib.save_peft(self.params, self.config, self.base.model.config, path / "peft",
                       base_model=str(self.base.directory))
    self._saved(tinker_path, path, ttl_seconds)
    return Future(types.SaveWeightsForSamplerResponse(path=tinker_path))

  def save_weights_external(self, name: str, ttl_seconds: int | None = None,
                            age_encryption_recipients: list[str] | None = None
                            ) -> Future[types.SaveWeightsExternalResponse]:
    """The adapter in PEFT's format (``peft/adapter_config.json``,
    ``peft/adapter_model.safetensors``: ``peft.PeftModel.from_pretrained`` loads it onto the
    transformers base model) at ``tinker://RUN/external_weights/NAME``, listed and deleted
    like any checkpoint; the Tinker CLI's ``checkpoint download`` fetches its files."""
    if age_encryption_recipients:
      raise TinkerError("age_encryption_recipients: encrypted exports are not supported (the "
                        "files stay under this server's root on this machine); export without")
    _check_ttl(ttl_seconds)
    tinker_path, path = self._tinker_path("external_weights", name)
    self._write(path, with_optimizer=False)
    lora_lib.save_peft(self.params, self.config, self.base.model.config, path / "peft",
                       base_model=str(self.base.directory))
    self._saved(tinker_path, path, ttl_seconds)
    return Future(types.SaveWeightsExternalResponse(path=tinker_path))

  def save_weights_and_get_sampling_client(self, name: str | None = None
                                           ) -> Future["SamplingClient"]:
    path = self.save_weights_for_sampler(name or f"sampler-{uuid.uuid4().hex[:8]}").result()
    return self.service.create_sampling_client(model_path=path.path)

  def create_sampling_client(self, model_path: str) -> Future["SamplingClient"]:
    return self.service.create_sampling_client(model_path=model_path)

  def get_tokenizer(self):
    """The base model's tokenizer as transformers loads it (what the SDK returns)."""
    import transformers  # pylint: disable=g-import-not-at-top
    return transformers.AutoTokenizer.from_pretrained(self.base.directory)



@functools.partial(jax.jit, static_argnames=("graphdef", "scale"))
def _next_token_logp(graphdef, base_state, tokens, params, scale):
  model = nnx.merge(graphdef, base_state)
  adapters = (None if params is None else
              lora_lib.Adapters(params, jnp.zeros(tokens.shape[0], jnp.int32), scale))
  logits, _ = model(tokens, adapters=adapters)
  return jax.nn.log_softmax(logits, axis=-1)


def _cut_at_strings(tok, out: generate.SampledSequence, strings) -> generate.SampledSequence:
  """``out`` up to the token whose text completes the first of ``strings`` (that token
  included, stop reason ``"stop"``); unchanged if its text holds none of them."""
  if not any(w in tok.decode(out.tokens) for w in strings):
    return out
  for end in range(1, len(out.tokens) + 1):
    if any(w in tok.decode(out.tokens[:end]) for w in strings):
      return generate.SampledSequence(out.tokens[:end], out.logprobs[:end], "stop")
  raise AssertionError("unreachable: the whole text holds a stop string")


class SamplingClient:
  """Samples from a base model, with a saved adapter or without."""

  def __init__(self, base: _Base, params: dict | None, config: lora_lib.LoRAConfig | None,
               model_path: str | None = None):
    self.base, self.params, self.config = base, params, config
    self.model_path = model_path  # the tinker:// path of its adapter (None: the base model)
    self._graphdef, self._base_state = nnx.split(base.model)

  def _adapters(self, n):
    if self.params is None:
      return None
    return lora_lib.Adapters(self.params, np.zeros(n, np.int32), self.config.scale)

  def sample(self, prompt: types.ModelInput, num_samples: int,
             sampling_params: types.SamplingParams, include_prompt_logprobs: bool = False,
             topk_prompt_logprobs: int = 0) -> Future[types.SampleResponse]:
    ids = _tokens(prompt, "prompt")
    sp = sampling_params
    if sp.max_tokens is None:
      raise TinkerError("SamplingParams.max_tokens is required")
    stop = [sp.stop] if isinstance(sp.stop, str) else list(sp.stop or [])
    strings = [w for w in stop if isinstance(w, str)]
    if strings:
      tok = self.base.tokenizer
      if tok is None:
        raise TinkerError("string stop sequences need the base model's tokenizer.json")
      if not all(strings):
        raise TinkerError("an empty stop string would stop before any token: remove it")
      # the decoding loop stops early on each string's own tokens; the text check below
      # catches the string however the sampled tokens spell it
      stop = [tuple(tok.encode(w)) if isinstance(w, str) else int(w) for w in stop]
    # as in Tinker, no seed draws fresh randomness; a seed makes the samples reproducible
    seed = secrets.randbits(31) if sp.seed is None else sp.seed
    params = generate.SamplingParams(
        max_tokens=sp.max_tokens, temperature=float(sp.temperature),
        top_k=0 if sp.top_k in (None, -1) else int(sp.top_k), top_p=float(sp.top_p),
        stop=tuple(stop), seed=seed)
    outs = generate.sample(self.base.model, [ids] * num_samples, params,
                           adapters=self._adapters(num_samples))
    if strings:
      outs = [_cut_at_strings(self.base.tokenizer, o, strings) for o in outs]
    sequences = [types.SampledSequence(
        stop_reason=o.stop_reason, sequence_id=uuid.uuid4().hex,
        tokens_np=np.asarray(o.tokens, np.int32),
        logprobs_np=np.asarray(o.logprobs, np.float32)) for o in outs]
    prompt_logprobs = topk = None
    if include_prompt_logprobs or topk_prompt_logprobs:
      logp = self._prompt_logp(ids)
      if include_prompt_logprobs:
        prompt_logprobs = np.asarray(
            [np.nan] + [logp[i - 1, ids[i]] for i in range(1, len(ids))], np.float32)
      if topk_prompt_logprobs:
        k = min(int(topk_prompt_logprobs), logp.shape[-1])
        order = np.argsort(-logp[:len(ids) - 1], axis=-1, kind="stable")[:, :k]
        # position 0 has no prediction: the SDK's sentinel (token 0, logprob -99999)
        topk = TopkLogprobs(
            token_ids=np.concatenate([np.zeros((1, k), np.int32), order.astype(np.int32)]),
            logprobs=np.concatenate([np.full((1, k), -99999.0, np.float32), np.take_along_axis(
                logp[:len(ids) - 1], order, axis=-1).astype(np.float32)]))
    return Future(types.SampleResponse(sequences=sequences, prompt_logprobs_np=prompt_logprobs,
                                       topk_prompt_logprobs_np=topk))

  def _prompt_logp(self, ids: list[int]) -> np.ndarray:
    """Log-probabilities ``[len(ids), vocab]`` of the next token after each prefix (one
    compiled program per bucketed length)."""
    s = _bucket(len(ids))
    tokens = np.zeros((1, s), np.int32)
    tokens[0, :len(ids)] = ids
    logp = _next_token_logp(self._graphdef, self._base_state, jnp.asarray(tokens), self.params,
                            1.0 if self.config is None else self.config.scale)
    return np.asarray(logp[0, :len(ids)])

  def _prompt_logprobs(self, ids: list[int]) -> list[float]:
    logp = self._prompt_logp(ids)
    return [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]

  def compute_logprobs(self, prompt: types.ModelInput) -> Future[list[float | None]]:
    """Each token's log-probability given the tokens before it (``None`` for the first)."""
    ids = _tokens(prompt, "prompt")
    return Future([None] + self._prompt_logprobs(ids))



def _add_async_twins(cls, names, unwrap=False):
  """``name_async``: an ``async`` method doing ``name``'s work, as the SDK's twins do: it returns
  the same future (``unwrap=False``) or the future's value (``unwrap=True``: the SDK's
  ``sample_async``, ``compute_logprobs_async`` and client-creating twins)."""
  for name in names:
    sync = getattr(cls, name)

    async def twin(self, *args, _sync=sync, **kwargs):
      out = _sync(self, *args, **kwargs)
      return out.result() if unwrap else out
    twin.__name__ = twin.__qualname__ = f"{name}_async"
    twin.__doc__ = f"``{name}``, awaitable."
    setattr(cls, f"{name}_async", twin)


_add_async_twins(TrainingClient, ("forward", "forward_backward", "forward_backward_custom",
                                  "optim_step", "save_state", "load_state",
                                  "load_state_with_optimizer", "save_weights_for_sampler",
                                  "save_weights_external"))
_add_async_twins(TrainingClient, ("save_weights_and_get_sampling_client",
                                  "create_sampling_client"), unwrap=True)
_add_async_twins(SamplingClient, ("sample", "compute_logprobs"), unwrap=True)
_add_async_twins(ServiceClient, ("create_sampling_client",), unwrap=True)
