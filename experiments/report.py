r"""Turns the eval.json files of several runs into a markdown + CSV table.

  python experiments/report.py --workdirs='workdirs/maml_sinusoid_full/*' \
    --published=experiments/configs/maml_sinusoid.py --out=results/maml_sinusoid
"""

import glob
import pathlib
import sys

from absl import app
from absl import flags

from metalearn import config as config_lib
from metalearn import reporting

_WORKDIRS = flags.DEFINE_string("workdirs", None, "Glob of run workdirs holding eval.json.")
_PUBLISHED = flags.DEFINE_string("published", None,
                                 "Config file defining PUBLISHED, REFERENCES and TITLE (and "
                                 "optionally MINI_BARS: minimum results of the mini protocol).")
_OUT = flags.DEFINE_string("out", None, "Output path without suffix (.md and .csv are added).")
_COMMAND = flags.DEFINE_string("command", None, "The command that made the runs, for the table "
                               "(default: this report's own command).")
_ALLOW_MISSING = flags.DEFINE_bool(
    "allow_missing", False, "Tabulate the runs that have eval.json and list the others as "
    "missing in the table, instead of stopping.")
flags.mark_flags_as_required(["workdirs", "published", "out"])


def main(argv):
  del argv
  workdirs = sorted(glob.glob(_WORKDIRS.value))
  if not workdirs:
    raise app.UsageError(f"no workdir matches {_WORKDIRS.value!r}")
  module = config_lib.load_config_module(_PUBLISHED.value)
  missing = [w for w in workdirs if not (pathlib.Path(w) / "eval.json").exists()]
  if missing and not _ALLOW_MISSING.value:
    raise app.UsageError(f"no eval.json in {missing}; evaluate them, or pass --allow_missing")
  found = [pathlib.Path(w) for w in workdirs if w not in missing]
  if not found:
    raise app.UsageError("none of the runs has an eval.json")
  rows = reporting.collect(found)
  command = _COMMAND.value or " ".join(
      pathlib.Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))
  protocols = {r["task"].get("protocol") for r in rows}
  bars = getattr(module, "MINI_BARS", None) if protocols == {"mini"} else None
  md, csv = reporting.write(rows, module.PUBLISHED, module.REFERENCES, pathlib.Path(_OUT.value),
                            module.TITLE, command,
                            missing=[pathlib.Path(w).name for w in missing], bars=bars)
  print(md.read_text())
  print(f"wrote {md} and {csv}")


if __name__ == "__main__":
  app.run(main)
