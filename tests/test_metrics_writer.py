"""metrics.jsonl and TensorBoard: every write is on disk at once (a kill loses nothing logged),
and a resumed run marks its restart so TensorBoard drops the killed run's later points."""

import json
import struct

from tensorboardX.proto import event_pb2

from metalearn.metrics_writer import MetricsWriter


def _events(directory):
  out = []
  for f in sorted(directory.glob("events.out.tfevents.*")):
    data, i = f.read_bytes(), 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i:i + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[i + 12:i + 12 + n])
      out.append(event)
      i += 12 + n + 4
  return out


def test_writes_are_on_disk_before_close_and_a_resume_purges_later_steps(tmp_path):
  w = MetricsWriter(tmp_path)
  for step in (1, 2, 3, 4):
    w.write(step, {"meta_loss": float(step)})
  # not closed: as if killed here
  scalars = [(e.step, e.summary.value[0].simple_value) for e in _events(tmp_path / "tensorboard")
             if e.summary.value]
  assert scalars == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
  assert [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
          ] == [1, 2, 3, 4]
  resumed = MetricsWriter(tmp_path, resume_step=2)
  resumed.write(3, {"meta_loss": 30.0})
  resumed.close()
  events = _events(tmp_path / "tensorboard")
  restart = [e.step for e in events if e.HasField("session_log")
             and e.session_log.status == event_pb2.SessionLog.START]
  assert restart == [3]  # TensorBoard drops the earlier file's steps >= 3
  # the killed run's file is kept (the resumed one, opened within the same second, is another)
  assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
  assert sorted(e.step for e in events if e.summary.value) == [1, 2, 3, 3, 4]
  assert [json.loads(l)["meta_loss"] for l in (tmp_path / "metrics.jsonl").read_text()
          .splitlines()] == [1.0, 2.0, 30.0]
  w.close()
