"""The Tinker SDK's protobuf bodies on the server's side, with the SDK's own protobuf module.

The SDK (0.38) sends ``forward_backward`` requests as ``tinker_public_pb2.ForwardBackwardRequest``
and reads ``ForwardBackwardOutput`` and ``SampleResponse`` results as protobuf when it asks for
them (``Accept: application/x-protobuf``). Its ``tinker.proto.request_conv`` and
``response_conv`` go one way each; these are their inverses: a request from the wire, results
to the wire. A body that does not parse raises :class:`WireError` naming what is wrong.
"""

import numpy as np
from tinker import types
from tinker.proto import tinker_public_pb2 as pb

_DTYPES = {pb.DTYPE_FLOAT32: ("float32", np.float32), pb.DTYPE_INT64: ("int64", np.int64),
           pb.DTYPE_INT32: ("int64", np.int32)}
_STOP = {"stop": pb.STOP_REASON_STOP, "length": pb.STOP_REASON_LENGTH}


class WireError(ValueError):
  """A protobuf body that is not a valid request."""


def _tensor(msg: pb.Tensor, what: str) -> types.TensorData:
  if msg.dtype not in _DTYPES:
    raise WireError(f"{what}: tensor dtype {msg.dtype} is not float32 or int64")
  name, dtype = _DTYPES[msg.dtype]
  if msg.HasField("sparse_csr"):
    raise WireError(f"{what}: sparse tensors are not supported; send it dense")
  raw = msg.dense
  if len(raw) % np.dtype(dtype).itemsize:
    raise WireError(f"{what}: {len(raw)} bytes is not a whole number of {name} values")
  data = np.frombuffer(raw, dtype).astype(np.int64 if name == "int64" else np.float32)
  shape = list(msg.shape) or None
  if shape is not None and int(np.prod(shape)) != data.size:
    raise WireError(f"{what}: shape {shape} does not hold {data.size} values")
  return types.TensorData(data=data, dtype=name, shape=shape)


def _chunk(msg: pb.Chunk, what: str) -> types.ModelInputChunk:
  kind = msg.WhichOneof("chunk")
  if kind == "encoded_text":
    raw = msg.encoded_text.tokens
    if len(raw) % 4:
      raise WireError(f"{what}: token bytes are not whole int32 values")
    return types.EncodedTextChunk(tokens=np.frombuffer(raw, np.int32).tolist())
  if kind == "image":
    return types.ImageChunk(data=msg.image.data, format=msg.image.format,
                            expected_tokens=msg.image.expected_tokens or None)
  raise WireError(f"{what}: chunk of kind {kind!r}; this server reads token chunks")


def forward_backward_request(body: bytes) -> tuple[types.ForwardBackwardRequest, bool]:
  """``(request, forward_only)`` from a ``ForwardBackwardRequest`` protobuf body."""
  msg = pb.ForwardBackwardRequest()
  try:
    msg.ParseFromString(body)
  except Exception as e:  # protobuf raises its own DecodeError
    raise WireError(f"the body is not a ForwardBackwardRequest protobuf ({e})") from None
  data = []
  for i, d in enumerate(msg.data):
    chunks = [_chunk(c, f"datum {i}") for c in d.model_input]
    inputs = {k: _tensor(v, f"datum {i} loss_fn_inputs[{k!r}]")
              for k, v in d.loss_fn_inputs.items()}
    data.append(types.Datum(model_input=types.ModelInput(chunks=chunks), loss_fn_inputs=inputs))
  config = {k: float(v) for k, v in msg.loss_fn_config.items()}
  for k, v in msg.loss_fn_config_v2.items():
    config[k] = v.text if v.WhichOneof("value") == "text" else float(v.number)
  request = types.ForwardBackwardRequest(
      forward_backward_input=types.ForwardBackwardInput(
          data=data, loss_fn=msg.loss_fn, loss_fn_config=config or None),
      model_id=msg.model_id, seq_id=msg.seq_id)
  return request, bool(msg.forward_only)


def _batched(arrays: list[np.ndarray], dtype) -> pb.BatchedTensor:
  flat = [np.ascontiguousarray(a, dtype) for a in arrays]
  sizes = np.cumsum([0] + [a.nbytes for a in flat]).astype(np.int64)
  proto_dtype = pb.DTYPE_FLOAT32 if np.dtype(dtype) == np.float32 else pb.DTYPE_INT64
  trailing = list(flat[0].shape[1:]) if flat else []
  return pb.BatchedTensor(data=b"".join(a.tobytes() for a in flat), offsets=sizes.tobytes(),
                          dtype=proto_dtype, trailing_shape=trailing)


def forward_backward_output(out: types.ForwardBackwardOutput) -> bytes:
  """A ``ForwardBackwardOutput`` as the SDK's protobuf (one batched record)."""
  msg = pb.ForwardBackwardOutput(loss_fn_output_type=out.loss_fn_output_type,
                                 metrics={k: float(v) for k, v in out.metrics.items()})
  if out.loss_fn_outputs:
    record = msg.loss_fn_outputs.add(num_datums=len(out.loss_fn_outputs))
    for name in out.loss_fn_outputs[0]:
      arrays = [np.asarray(d[name].to_numpy()) for d in out.loss_fn_outputs]
      dtype = np.int64 if out.loss_fn_outputs[0][name].dtype == "int64" else np.float32
      record.fields[name].CopyFrom(_batched(arrays, dtype))
  return msg.SerializeToString()


def _topk(topk) -> pb.TopkLogprobs:
  ids, lps = np.asarray(topk.token_ids, np.int32), np.asarray(topk.logprobs, np.float32)
  return pb.TopkLogprobs(token_ids=ids.tobytes(), logprobs=lps.tobytes(), k=ids.shape[1],
                         length=ids.shape[0])


def sample_response(res: types.SampleResponse) -> bytes:
  """A ``SampleResponse`` as the SDK's protobuf."""
  msg = pb.SampleResponse()
  for s in res.sequences:
    seq = msg.sequences.add(stop_reason=_STOP[s.stop_reason],
                            tokens=np.asarray(s.tokens, np.int32).tobytes())
    if s.logprobs is not None:
      seq.logprobs = np.asarray(s.logprobs, np.float32).tobytes()
  if res.prompt_logprobs_np is not None:
    msg.prompt_logprobs = np.asarray(res.prompt_logprobs_np, np.float32).tobytes()
  if res.topk_prompt_logprobs_np is not None:
    msg.topk_prompt_logprobs.CopyFrom(_topk(res.topk_prompt_logprobs_np))
  return msg.SerializeToString()
