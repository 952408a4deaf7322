"""The registry: declared options, generic checks, lookup by name, discovery of new modules."""

import dataclasses
import json
import sys

import ml_collections
import pytest

from metalearn import config as config_lib
from metalearn.registry import Component, ConfigError, Option, Registry, check_value, complete


def test_option_describes_what_it_accepts():
  assert Option(0.01, gt=0).describe() == "a number > 0"
  assert Option(3, ge=1).describe() == "an int >= 1"
  assert Option("a", choices=("a", "b")).describe() == "one of ['a', 'b']"
  assert Option((1, 2), length=2, ge=0).describe() == "a tuple of ints of length 2 each >= 0"
  assert Option(None, optional=True).describe() == "a value (or None)"
  with pytest.raises(ValueError, match="needs accepts="):
    Option(1, check=lambda v: v > 0)


@pytest.mark.parametrize("option,value,problem", [
    (Option(0.1, gt=0), 0.0, "out of range"),
    (Option(0.1, gt=0), float("nan"), "not finite"),
    (Option(1, ge=0), 1.5, "wrong type"),
    (Option(1, ge=0), True, "wrong type"),  # a bool is no int here
    (Option(1.0), 2, None),  # a float key takes an int
    (Option("x", choices=("x", "y")), "z", "not a choice"),
    (Option((1,), length=(1, 2)), (1, 2, 3), "wrong length"),
    (Option((1.0, 2.0), check=lambda r: r[0] < r[1], accepts="(low, high)"), (2.0, 1.0),
     "rejected"),
    (Option(0), None, "None is not allowed"),
    (Option(0, optional=True), None, None),
])
def test_option_finds_each_problem(option, value, problem):
  assert option.problem(value) == problem


def test_check_value_names_the_key_and_what_it_accepts():
  with pytest.raises(ConfigError, match=r"config key 'g.k' = -1 is not allowed: it must be an "
                                        r"int >= 0 \(how many\)"):
    check_value("g.k", -1, Option(1, ge=0, doc="how many"))
  with pytest.raises(ConfigError, match=r"config key 'g.k' must be an int \(like 1\), got str"):
    check_value("g.k", "1", Option(1))
  assert check_value("g.k", [1, 2], Option((0,))) == (1, 2)  # lists become tuples


def test_complete_fills_defaults_and_rejects_unknown_keys():
  options = dict(width=Option(8, ge=1), depth=Option(2, ge=1))
  group = ml_collections.ConfigDict(dict(name="net", width=16))
  assert complete(group, options, "model", "model 'net'").to_dict() == {"width": 16, "depth": 2}
  group.widht = 3
  with pytest.raises(ConfigError, match=r"unknown config key 'model.widht' for model 'net'. "
                                        r"Did you mean 'model.width'\? Keys allowed: depth, "
                                        r"name, width"):
    complete(group, options, "model", "model 'net'")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Spec(Component):
  build: object = None


def _builder():
  return None


def test_registry_lookup_duplicates_and_types():
  registry = Registry("widget", "json", _Spec)  # the json package: no module registers here
  registry._discovered = True
  a = registry.register(_Spec(name="alpha", build=json.dumps))
  assert registry.get("alpha") is a and registry.names() == ["alpha"]
  with pytest.raises(ConfigError, match=r"config key 'widget.name' = 'alpah' is not a "
                                        r"registered widget. Did you mean 'alpha'\? "
                                        r"Registered: alpha"):
    registry.get("alpah", "widget.name")
  # the same module registering again (a re-import) replaces its spec; another module may not
  assert registry.register(_Spec(name="alpha", build=json.loads)).build is json.loads
  with pytest.raises(ValueError, match=r"two widget components are named 'alpha' \(json and "
                                       r"\S*test_registry\): rename one"):
    registry.register(_Spec(name="alpha", build=_builder))
  with pytest.raises(TypeError, match="must be a _Spec"):
    registry.register(Component(name="beta"))


def test_a_new_module_in_the_package_is_found_without_editing_anything(tmp_path, monkeypatch):
  package = tmp_path / "widgets_pkg"
  package.mkdir()
  (package / "__init__.py").write_text("")
  (package / "base.py").write_text(
      "from metalearn.registry import Component, Registry\n"
      "WIDGETS = Registry('widget', 'widgets_pkg', Component)\n")
  (package / "gear.py").write_text(
      "from metalearn.registry import Component, Option\n"
      "from widgets_pkg.base import WIDGETS\n"
      "WIDGETS.register(Component(name='gear', options=dict(teeth=Option(12, ge=3))))\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  try:
    from widgets_pkg.base import WIDGETS  # pylint: disable=g-import-not-at-top
    assert WIDGETS.names() == ["gear"]
    assert WIDGETS.get("gear").defaults() == {"name": "gear", "teeth": 12}
  finally:
    for name in [m for m in sys.modules if m.startswith("widgets_pkg")]:
      del sys.modules[name]


def test_validate_completes_every_group_and_is_idempotent():
  c = ml_collections.ConfigDict()
  c.learner = dict(name="metasgd", inner_lr=0.03)
  c.objective = dict(name="progress")
  done = config_lib.validate(c)
  assert done.learner.to_dict() == {"name": "metasgd", "inner_lr": 0.03, "num_inner_steps": 1}
  assert done.task.name == "sinusoid" and done.model.name == "mlp"
  assert done.estimator.name == "backprop" and done.eval.name == "few_shot"
  assert done.objective.reference_loss == 0.0 and done.curriculum.name == ""
  assert config_lib.validate(done).to_dict() == done.to_dict()
  # a learner that needs Reptile's update gets the estimator providing it
  assert config_lib.default_config(learner="reptile").estimator.name == "reptile"


def test_describe_lists_a_components_options():
  text = config_lib.describe("learner", "maml")
  assert text.splitlines()[0].startswith("learner 'maml': MAML")
  assert "  learner.inner_lr = 0.01: the inner SGD step size" in text
  with pytest.raises(ConfigError, match="Did you mean 'maml'"):
    config_lib.describe("learner", "mamll")
