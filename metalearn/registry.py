"""Components picked by name: declared options, one registry per kind, generic validation.

Every task family, model, learner, estimator, objective, teacher and evaluator is a
*component*: a module registers a spec (a frozen dataclass, :class:`Component` or a subclass
declared in its kind's ``base`` module) that owns the component's config: its options
(defaults, types and allowed values, as :class:`Option`), the rules only it knows
(``check``) and how it is built. A config group names the component and sets some of its
options::

  c.learner = dict(name="metasgd", inner_lr=0.03)

:func:`metalearn.config.validate` finds ``metasgd`` in the learner registry, fills the options
the group leaves out with their defaults, and checks every key, type and value here, once, from
the declarations. A new component is one new module in its kind's package: the registry imports
every module of the package the first time a name is looked up, so nothing else is edited.

>>> from metalearn.registry import Option
>>> Option(0.01, gt=0).describe()
'a number > 0'
"""

import dataclasses
import difflib
import importlib
import math
import pkgutil
import threading
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

import ml_collections


class ConfigError(ValueError):
  """A config key is unknown, mistyped, out of range, or does not go with another."""


_NUMBER = (int, float)


@dataclasses.dataclass(frozen=True)
class Option:
  """One config key of a component: its default and what it accepts.

  Attributes:
    default: the value a config gets when it leaves the key out; its type is the key's type
      (a float key accepts ints; a tuple key's elements take the type of the default's first
      element, or of ``element``).
    doc: what the key means (shown by :func:`metalearn.config.describe`).
    ge, gt, le, lt: bounds of a number, or of every element of a tuple.
    choices: the allowed values (of a tuple: of every element).
    length: a tuple's length: exact (``int``) or ``(min, max)`` (``max`` may be ``None``).
    check: a predicate for anything else (e.g. ``low <= high`` of a range); with ``accepts``,
      the words saying what it accepts.
    optional: ``None`` is allowed too.
    element: the element type of a tuple whose default is empty.
    free: a group of free keys (e.g. keyword arguments passed on), checked by the component.
  """
  default: Any
  doc: str = ""
  ge: float | None = None
  gt: float | None = None
  le: float | None = None
  lt: float | None = None
  choices: tuple | None = None
  length: int | tuple[int, int | None] | None = None
  check: Callable[[Any], bool] | None = None
  accepts: str = ""
  optional: bool = False
  element: type | None = None
  free: bool = False

  def __post_init__(self):
    if self.check is not None and not self.accepts:
      raise ValueError("an Option with check= needs accepts= (the words shown in errors)")

  @property
  def is_tuple(self) -> bool:
    return isinstance(self.default, (tuple, list)) or self.element is not None

  def _element_type(self):
    if self.element is not None:
      return self.element
    if isinstance(self.default, (tuple, list)) and self.default:
      return type(self.default[0])
    return None

  def _type_name(self) -> str:
    if self.free:
      return "a group of keys"
    if self.is_tuple:
      t = self._element_type()
      return "a tuple" + (f" of {_NAMES.get(t, t.__name__)}s" if t else "")
    if self.default is None:
      return "a value"
    return _ARTICLE.get(type(self.default), f"a {type(self.default).__name__}")

  def describe(self) -> str:
    """What the key accepts, in words (used in error messages)."""
    if self.accepts:
      return self.accepts
    parts = [self._type_name()]
    if self.choices is not None:
      parts = [("a tuple from " if self.is_tuple else "one of ") + repr(list(self.choices))]
    if self.length is not None:
      lo, hi = (self.length, self.length) if isinstance(self.length, int) else self.length
      parts.append(f"of length {lo}" if lo == hi else
                   f"of length >= {lo}" if hi is None else f"of length {lo}..{hi}")
    bounds = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                          ("<", self.lt)) if v is not None]
    if bounds:
      parts.append((" and ".join(bounds)) if not self.is_tuple else
                   "each " + " and ".join(bounds))
    text = " ".join(parts)
    return text + (" (or None)" if self.optional else "")

  def problem(self, value) -> str | None:
    """``None`` if ``value`` is allowed, else why not (a phrase)."""
    if self.free:
      return None if isinstance(value, (ml_collections.ConfigDict, dict)) else "not a group"
    if value is None:
      return None if self.optional or self.default is None else "None is not allowed"
    if not _type_ok(value, self.default, self._element_type() if self.is_tuple else None,
                    self.is_tuple):
      return "wrong type"
    items = list(value) if self.is_tuple else [value]
    if self.length is not None:
      lo, hi = (self.length, self.length) if isinstance(self.length, int) else self.length
      if len(items) < lo or (hi is not None and len(items) > hi):
        return "wrong length"
    for v in items:
      if self.choices is not None and v not in self.choices:
        return "not a choice"
      if isinstance(v, _NUMBER) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v) and any(
            b is not None for b in (self.ge, self.gt, self.le, self.lt)):
          return "not finite"
        if ((self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le) or (self.lt is not None and v >= self.lt)):
          return "out of range"
    if self.check is not None and not self.check(value):
      return "rejected"
    return None


_ARTICLE = {bool: "a bool", int: "an int", float: "a number", str: "a string"}
_NAMES = {bool: "bool", int: "int", float: "number", str: "string"}


def _type_ok(value, default, element, is_tuple) -> bool:
  if is_tuple:
    if not isinstance(value, (tuple, list)):
      return False
    return element is None or all(_scalar_ok(v, element) for v in value)
  if default is None:
    return True
  return _scalar_ok(value, type(default))


def _scalar_ok(value, kind) -> bool:
  if kind is bool:
    return isinstance(value, bool)
  if kind is float:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)
  if kind is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if kind in (tuple, list):
    return isinstance(value, (tuple, list))
  return isinstance(value, kind)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Component:
  """A registered component: its name, options and own rules.

  Attributes:
    name: what a config's ``name`` key says to pick it.
    doc: one line on what it is (shown when listing a registry).
    options: the config keys it owns besides ``name`` (see :class:`Option`).
    check: ``config -> None``: rules only this component knows, across its own keys or with
      the rest of the (completed) config; raises :class:`ConfigError` naming the keys.
  """
  name: str
  doc: str = ""
  options: Mapping[str, Option] = dataclasses.field(default_factory=dict)
  check: Callable[[ml_collections.ConfigDict], None] | None = None

  def defaults(self) -> dict:
    """``{"name": name, option: default, ...}``: the group of a config that picks it."""
    return {"name": self.name, **{k: _copy(o.default) for k, o in self.options.items()}}


def _copy(value):
  return dict(value) if isinstance(value, Mapping) else value


C = TypeVar("C", bound=Component)


class Registry(Generic[C]):
  """The components of one kind, found by name.

  Args:
    kind: what they are (``"learner"``), used in messages.
    package: the package whose modules register them (``"metalearn.learners"``); every module
      of it is imported the first time a name is looked up, so a new module is found without
      being listed anywhere.
    spec_type: the spec class every registered component is an instance of.
  """

  def __init__(self, kind: str, package: str, spec_type: type[C]):
    self.kind, self.package, self.spec_type = kind, package, spec_type
    self._specs: dict[str, C] = {}
    self._discovered = False
    self._lock = threading.RLock()

  def register(self, spec: C) -> C:
    """Adds ``spec``; a second component of the same name is an error."""
    if not isinstance(spec, self.spec_type):
      raise TypeError(f"a {self.kind} component must be a {self.spec_type.__name__}, got "
                      f"{type(spec).__name__}")
    with self._lock:
      old = self._specs.get(spec.name)
      if old is not None and old != spec and _origin(old) != _origin(spec):
        raise ValueError(f"two {self.kind} components are named {spec.name!r} "
                         f"({_origin(old)} and {_origin(spec)}): rename one")
      self._specs[spec.name] = spec
    return spec

  def _discover(self) -> None:
    with self._lock:
      if self._discovered:
        return
      package = importlib.import_module(self.package)
      for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
          importlib.import_module(f"{self.package}.{info.name}")
      self._discovered = True

  def names(self) -> list[str]:
    """Every registered name, sorted."""
    self._discover()
    return sorted(self._specs)

  def __contains__(self, name: str) -> bool:
    self._discover()
    return name in self._specs

  def get(self, name: str, key: str | None = None) -> C:
    """The component ``name``; unknown: :class:`ConfigError` listing the registered names
    (``key``: the config key that named it, for the message)."""
    self._discover()
    if name in self._specs:
      return self._specs[name]
    names = sorted(self._specs)
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f"config key '{key}' = {name!r}" if key else f"{self.kind} {name!r}"
    raise ConfigError(f"{where} is not a registered {self.kind}.{hint} Registered: "
                      f"{', '.join(names)} (a new {self.kind} is a module in {self.package})")

  def specs(self) -> list[C]:
    self._discover()
    return [self._specs[n] for n in sorted(self._specs)]


def _origin(spec) -> str:
  build = getattr(spec, "build", None)
  return getattr(build, "__module__", "?") if build is not None else "?"


def complete(group, options: Mapping[str, Option], path: str, what: str
             ) -> ml_collections.ConfigDict:
  """A copy of ``group`` with every option it leaves out set to its default, after checking
  each key it sets: unknown (with a did-you-mean), wrong type or not allowed raise
  :class:`ConfigError` naming ``path.key`` and what it accepts. ``what`` names the owner
  (``"learner 'maml'"``) in messages."""
  group = group if group is not None else ml_collections.ConfigDict()
  out = ml_collections.ConfigDict()
  for key in group.keys():
    if key == "name":
      continue
    if key not in options:
      raise ConfigError(unknown_key_message(f"{path}.{key}" if path else key, key,
                                            sorted({"name", *options}), what))
  for key, option in options.items():
    full = f"{path}.{key}" if path else key
    value = group[key] if key in group else _copy(option.default)
    if option.free:
      if not isinstance(value, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f"config key '{full}' must be a group of keys, got {value!r}")
      value = ml_collections.ConfigDict(dict(value))
    else:
      value = check_value(full, value, option)
    out[key] = value
  return out


def check_value(path: str, value, option: Option):
  """``value`` (lists as tuples) if ``option`` allows it, else :class:`ConfigError`."""
  if isinstance(value, list):
    value = tuple(value)
  problem = option.problem(value)
  if problem == "wrong type":
    raise ConfigError(f"config key '{path}' must be {option._type_name()} (like "
                      f"{option.default!r}), got {type(value).__name__} {value!r}")
  if problem is not None:
    doc = f" ({option.doc})" if option.doc else ""
    raise ConfigError(f"config key '{path}' = {value!r} is not allowed: it must be "
                      f"{option.describe()}{doc}")
  return value


def unknown_key_message(path: str, key: str, allowed: Iterable[str], what: str) -> str:
  allowed = sorted(allowed)
  close = difflib.get_close_matches(key, allowed, n=1)
  prefix = path[:-len(key)]
  hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
  return (f"unknown config key '{path}' for {what}.{hint} Keys allowed: "
          f"{', '.join(allowed) if allowed else '(none)'}")
