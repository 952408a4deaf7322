"""Console logging for the binaries: our progress lines, without orbax's per-save chatter or
JAX's backend probing (``Unable to initialize backend 'tpu'`` on every CPU run)."""

import logging as std_logging
import pathlib

from absl import logging


class _DropLibraryInfo(std_logging.Filter):
  """Drops INFO and below from the named libraries (warnings and errors still show)."""

  def __init__(self, libraries):
    super().__init__()
    self._libraries = tuple(f"/{name}/" for name in libraries)

  def filter(self, record):
    return record.levelno > std_logging.INFO or not any(
        lib in record.pathname for lib in self._libraries)


class _DropRestatements(std_logging.Filter):
  """Drops library warnings that only restate what the caller asked for."""
  # (where it is emitted, its format): orbax warns on every read-only CheckpointManager, which
  # is what evaluation and export open by design
  RESTATEMENTS = (("/orbax/checkpoint/checkpoint_manager.py", "Given directory is read only=%s"),)

  def filter(self, record):
    return not any(record.pathname.endswith(path) and record.msg == msg
                   for path, msg in self.RESTATEMENTS)


def drop_restatements() -> None:
  """Drops library warnings that restate a setting we chose, on absl's logger itself (so in a
  notebook too, where absl's handler is not installed). Idempotent."""
  logger = std_logging.getLogger("absl")
  if not any(isinstance(f, _DropRestatements) for f in logger.filters):
    logger.addFilter(_DropRestatements())


def quiet_libraries(libraries=("orbax", "tensorstore", "jax")) -> None:
  """Keeps INFO lines from ``libraries`` off the absl handler (the binaries' console)."""
  logging.get_absl_handler().addFilter(_DropLibraryInfo(libraries))


def exit_with(error: Exception, what: str = "config error") -> None:
  """Ends a binary on a bad input with one line on stderr (``app.UsageError`` would print the
  module docstring and flag help before it) and exit status 2."""
  import sys  # pylint: disable=g-import-not-at-top
  print(f"{pathlib.Path(sys.argv[0]).name}: {what}: {error}", file=sys.stderr)
  sys.exit(2)
