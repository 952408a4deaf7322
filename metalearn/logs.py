"""Console logging for the binaries: our progress lines, without orbax's per-save chatter or
JAX's backend probing (``Unable to initialize backend 'tpu'`` on every CPU run)."""

import logging as std_logging

from absl import logging


class _DropLibraryInfo(std_logging.Filter):
  """Drops INFO and below from the named libraries (warnings and errors still show)."""

  def __init__(self, libraries):
    super().__init__()
    self._libraries = tuple(f"/{name}/" for name in libraries)

  def filter(self, record):
    return record.levelno > std_logging.INFO or not any(
        lib in record.pathname for lib in self._libraries)


def quiet_libraries(libraries=("orbax", "tensorstore", "jax")) -> None:
  """Keeps INFO lines from ``libraries`` off the absl handler."""
  logging.get_absl_handler().addFilter(_DropLibraryInfo(libraries))
