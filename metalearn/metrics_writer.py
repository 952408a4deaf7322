"""Metrics to ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard events."""

import json
import os
import pathlib

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
    import tensorboardX  # pylint: disable=g-import-not-at-top  (only a writing process needs it)
    self._tb = tensorboardX.SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self._active:
      return
    self._file.write(json.dumps({"step": step, **metrics}) + "\n")
    self._file.flush()
    for name, value in metrics.items():
      self._tb.add_scalar(name, value, step)

  def close(self) -> None:
    if self._active:
      self._file.close()
      self._tb.close()
