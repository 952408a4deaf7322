"""Metrics to ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard events."""

import json
import os
import pathlib
import socket
import struct
import time
import uuid

from absl import logging
import jax


class MetricsWriter:
  """Appends scalar metrics; on resume, drops rows past the restored step first.

  Only process 0 writes. Rows after ``resume_step`` came from a run that was stopped before
  its next checkpoint; the resumed run recomputes them identically, so they are replaced.
  """

  def __init__(self, workdir: str | os.PathLike, resume_step: int = 0):
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._active = jax.process_index() == 0
    if not self._active:
      return
    if self.path.exists():
      lines = [line for line in self.path.read_text().splitlines() if line.strip()]
      rows = [json.loads(line) for line in lines[:-1]]
      if lines:
        try:
          rows.append(json.loads(lines[-1]))
        except json.JSONDecodeError:  # a row cut off by a kill: recomputed after resume
          logging.warning("metrics.jsonl: dropping a partly written last line: %r", lines[-1])
      keep = [r for r in rows if r["step"] <= resume_step]
      if len(keep) < len(lines):
        logging.info("metrics.jsonl: replacing %d line(s) after step %d (they are recomputed).",
                     len(lines) - len(keep), resume_step)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        tmp.replace(self.path)
    self._file = self.path.open("a")
    self._tb = _Events(pathlib.Path(workdir) / "tensorboard",
                       purge_step=resume_step + 1 if resume_step else None)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self._active:
      return
    self._file.write(json.dumps({"step": step, **metrics}) + "\n")
    self._file.flush()
    self._tb.scalars(step, metrics)

  def close(self) -> None:
    if self._active:
      self._file.close()
      self._tb.close()


class _Events:
  """TensorBoard's event file, written and flushed synchronously: a kill loses nothing logged.
  ``purge_step``: a resumed run's first step; TensorBoard then drops the earlier files' points
  from that step on, which the resumed run recomputes.

  The file is TFRecord framing around ``tensorboard.Event`` protos, of which only these fields
  are written: wall_time (1), step (2), file_version (3), summary (5: value (1): tag (1),
  simple_value (2)) and session_log (7: status (1)). It is encoded here because tensorboardX,
  the library that otherwise writes it without TensorFlow, imports torch whenever torch is
  installed (2-3 s per run) and queues events for a background thread."""

  def __init__(self, logdir: pathlib.Path, purge_step: int | None):
    logdir.mkdir(parents=True, exist_ok=True)
    # the file name has the time in seconds and the host, as TensorBoard's writers name it; a
    # unique suffix keeps a run resumed within the same second from truncating the killed
    # run's file
    self.path = logdir / (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
                          f".{os.getpid()}.{uuid.uuid4().hex[:8]}")
    self._file = self.path.open("wb")
    self._write(_event(time.time(), 0, _string(3, b"brain.Event:2")))
    if purge_step is not None:  # SessionLog{status: START}
      self._write(_event(time.time(), purge_step, _message(7, _varint_field(1, 1))))

  def scalars(self, step: int, metrics: dict[str, float]) -> None:
    values = b"".join(  # Summary.value: {tag: 1, simple_value: 2 (float)}
        _message(1, _string(1, name.encode()) + _tag(2, 5) + struct.pack("<f", float(value)))
        for name, value in metrics.items())
    self._write(_event(time.time(), step, _message(5, values)))

  def _write(self, record: bytes) -> None:
    header = struct.pack("<Q", len(record))
    self._file.write(header + struct.pack("<I", _masked_crc32c(header)) + record
                     + struct.pack("<I", _masked_crc32c(record)))
    self._file.flush()

  def close(self) -> None:
    self._file.close()


# Protocol-buffer wire format (https://protobuf.dev/programming-guides/encoding/).
def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
  return _varint(field << 3 | wire_type)


def _varint_field(field: int, n: int) -> bytes:
  return _tag(field, 0) + _varint(n)


def _string(field: int, data: bytes) -> bytes:
  return _tag(field, 2) + _varint(len(data)) + data


_message = _string  # an embedded message is length-delimited like a string


def _event(wall_time: float, step: int, body: bytes) -> bytes:
  """Event{wall_time: 1 (double), step: 2 (int64), then ``body``'s fields}."""
  return (_tag(1, 1) + struct.pack("<d", wall_time)
          + (_varint_field(2, step) if step else b"") + body)


def _crc32c_table() -> tuple[int, ...]:
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli, reflected
    table.append(crc)
  return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc32c(data: bytes) -> int:
  """TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
