r"""Serves Tinker's API over local HF-format base models, for the official tinker SDK.

  python experiments/serve_tinker.py --base_model=/tmp/metalearn/lm_small/model --port=8000
  TINKER_BASE_URL=http://127.0.0.1:8000 TINKER_API_KEY=tml-local python your_loop.py

``--base_model`` may be given several times, as ``NAME=DIR`` or ``DIR`` (named by its last path
component); the SDK's ``base_model`` names one of them. Saved weights go under ``--root``
(``tinker://`` paths map there): restarted on the same root, the server serves every saved state.
It binds to 127.0.0.1 unless ``--host`` says otherwise. See docs/tinker.md.
"""

import pathlib

from absl import app
from absl import flags

from metalearn import logs
from metalearn.tinker.client import ServiceClient
from metalearn.tinker.server import TinkerServer, serve

_BASE = flags.DEFINE_multi_string("base_model", None, "NAME=DIR or DIR of an HF-format model.")
_ROOT = flags.DEFINE_string("root", "/tmp/metalearn/tinker", "Where saved weights live.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind.")
_PORT = flags.DEFINE_integer("port", 8000, "Port to bind.")
_POLL = flags.DEFINE_float("poll_seconds", 10.0, "Long-poll wait of retrieve_future.")
_IDLE = flags.DEFINE_float("idle_exit_seconds", 0.0, "Stop after this long without a request "
                           "(0: never).")
flags.mark_flags_as_required(["base_model"])


def base_models(specs: list[str]) -> dict[str, str]:
  """``{name: directory}`` from ``NAME=DIR`` / ``DIR`` flags; refuses a directory without
  ``config.json`` and a name given twice."""
  out = {}
  for spec in specs:
    name, _, directory = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path = pathlib.Path(directory)
    name = name or path.name
    if not (path / "config.json").exists():
      raise app.UsageError(f"--base_model={spec}: {path} has no config.json (an HF-format "
                           "model directory, e.g. the export of experiments/lm_pretrain.py)")
    if name in out:
      raise app.UsageError(f"--base_model: the name {name!r} is given twice; use NAME=DIR")
    out[name] = str(path)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logs.quiet_libraries()
  models = base_models(_BASE.value)
  server = TinkerServer(ServiceClient(models, root=_ROOT.value), poll_seconds=_POLL.value)
  print(f"serving {sorted(models)} on http://{_HOST.value}:{_PORT.value} (root {_ROOT.value})",
        flush=True)
  serve(server, _HOST.value, _PORT.value, idle_exit_seconds=_IDLE.value)


if __name__ == "__main__":
  app.run(main)
