"""Experiment configs: the schema, its validation, config files and resume checks.

:func:`default_config` (:mod:`metalearn.config_schema`) lists every key an experiment may set,
with its default and type. :func:`validate` (:mod:`metalearn.config_validation`) checks a config
against it before anything is built or compiled: an unknown key, a wrong type or a value outside
what is allowed raises :class:`ConfigError` naming the key and what it accepts.
:func:`load_config_module` imports an ``experiments/configs`` file, and :func:`resume_conflicts`
says whether a workdir's run can be resumed with the current config.
"""

import importlib.util
import pathlib

from metalearn.config_schema import (LEARNER_KEYS, MODELS, RESUMABLE_CHANGES, TASKS, ConfigError,
                                     default_config, learner_defaults)
from metalearn.config_validation import validate

__all__ = ["ConfigError", "LEARNER_KEYS", "MODELS", "TASKS", "default_config",
           "learner_defaults", "load_config_module", "resume_conflicts", "validate"]


def load_config_module(path: str):
  """Imports a config file (``experiments/configs/NAME.py``) as a module."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  if spec is None:
    raise FileNotFoundError(f"no config file at {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def resume_conflicts(saved: dict, current: dict, prefix="") -> list[str]:
  """Keys whose values differ between a workdir's saved config and the current one.

  Keys in :data:`RESUMABLE_CHANGES` may differ (e.g. extending ``num_steps``), except
  ``num_steps`` under a decaying learning-rate schedule, whose length it sets.
  """
  out = []
  if (not prefix and saved.get("num_steps") != current.get("num_steps")
      and current.get("optimizer", {}).get("schedule", "constant") != "constant"):
    out.append(f"num_steps: {saved.get('num_steps')!r} in the workdir, "
               f"{current.get('num_steps')!r} now (it sets the length of the "
               f"{current['optimizer']['schedule']!r} learning-rate schedule)")
  for key in sorted(set(saved) | set(current)):
    path = prefix + key
    if path in RESUMABLE_CHANGES:
      continue
    a, b = saved.get(key), current.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += resume_conflicts(a, b, path + ".")
    elif a != b:
      out.append(f"{path}: {a!r} in the workdir, {b!r} now")
  return out
