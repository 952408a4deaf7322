"""Metrics to ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard events."""

import json
import os
import pathlib
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
  """TensorBoard's event file, written and flushed synchronously: a kill loses nothing logged
  (tensorboardX's ``SummaryWriter`` queues events for a thread that flushes every two minutes,
  and its ``flush`` does not drain the queue). ``purge_step``: a resumed run's first step;
  TensorBoard then drops the earlier files' points from that step on, which the resumed run
  recomputes."""

  def __init__(self, logdir: pathlib.Path, purge_step: int | None):
    # pylint: disable=g-import-not-at-top  (only a writing process needs them)
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto import event_pb2, summary_pb2
    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    logdir.mkdir(parents=True, exist_ok=True)
    # the file name has the time in seconds and the host: a unique suffix keeps a run resumed
    # within the same second from truncating the killed run's file
    self._writer = EventsWriter(str(logdir / "events"), f".{os.getpid()}.{uuid.uuid4().hex[:8]}")
    if purge_step is not None:
      self._writer.write_event(event_pb2.Event(
          wall_time=time.time(), step=purge_step,
          session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    self._writer.flush()

  def scalars(self, step: int, metrics: dict[str, float]) -> None:
    values = [self._summary_pb2.Summary.Value(tag=name, simple_value=float(value))
              for name, value in metrics.items()]
    self._writer.write_event(self._event_pb2.Event(
        wall_time=time.time(), step=step, summary=self._summary_pb2.Summary(value=values)))
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
