"""metrics.jsonl and TensorBoard: every write is on disk at once (a kill loses nothing logged),
and a resumed run marks its restart so TensorBoard drops the killed run's later points."""

import json
import struct

# the test reads the files with tensorboardX's compiled protos (a test dependency)
from tensorboardX.proto import event_pb2

from metalearn import metrics_writer
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


def test_event_records_are_what_tensorboards_protos_and_tfrecord_framing_make(tmp_path):
  from tensorboardX.crc32c import crc32c as reference_crc32c  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import summary_pb2  # pylint: disable=g-import-not-at-top
  assert metrics_writer.crc32c(b"123456789") == 0xE3069283  # RFC 3720's check value
  for data in (b"", b"a", bytes(range(256)) * 3):
    assert metrics_writer.crc32c(data) == reference_crc32c(data)
  # pylint: disable=protected-access
  events = metrics_writer._Events(tmp_path, purge_step=7)
  events.scalars(123456789, {"meta_loss": 0.25, "eval/accuracy": -3.5})
  events.close()
  data = events.path.read_bytes()
  records, i = [], 0
  while i < len(data):  # the TFRecord framing, each checksum verified
    header = data[i:i + 8]
    (n,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[i + 8:i + 12])[0] == metrics_writer._masked_crc32c(header)
    record = data[i + 12:i + 12 + n]
    assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == (
        metrics_writer._masked_crc32c(record))
    records.append(record)
    i += 16 + n
  parsed = [event_pb2.Event.FromString(r) for r in records]
  assert parsed[0].file_version == "brain.Event:2"
  assert parsed[1].step == 7 and parsed[1].session_log.status == event_pb2.SessionLog.START
  expected = event_pb2.Event(
      wall_time=parsed[2].wall_time, step=123456789, summary=summary_pb2.Summary(value=[
          summary_pb2.Summary.Value(tag="meta_loss", simple_value=0.25),
          summary_pb2.Summary.Value(tag="eval/accuracy", simple_value=-3.5)]))
  assert records[2] == expected.SerializeToString()  # byte for byte
  assert [r == e.SerializeToString() for r, e in zip(records, parsed)] == [True] * 3
