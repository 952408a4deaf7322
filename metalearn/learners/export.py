"""Trained learned optimizers as optax transformations, saved and loaded with orbax.

::

  tx = export.as_optax(MLPLOpt(), theta, num_steps=1000)   # an optax.GradientTransformationExtraArgs
  opt_state = tx.init(params)
  updates, opt_state = tx.update(grads, opt_state, params, loss=loss)  # loss= if rule.needs_loss
  params = optax.apply_updates(params, updates)

  export.save("/tmp/my_lopt", "mlp_lopt", {"hidden": [32, 32]}, theta)
  tx = export.load_optax("/tmp/my_lopt", num_steps=1000)
"""

import json
import pathlib
from typing import Any

import jax
import optax

from metalearn.learners.base import LEARNERS
from metalearn.learners.optimizer import OptimizerLearnerSpec


def learned_optimizers() -> list[str]:
  """The registered learned optimizers' names."""
  return [s.name for s in LEARNERS.specs() if isinstance(s, OptimizerLearnerSpec)]


def make_rule(name: str, options: dict[str, Any]):
  """The learned optimizer ``name`` (a registered one) with constructor ``options``."""
  if name not in LEARNERS or not isinstance(LEARNERS.get(name), OptimizerLearnerSpec):
    raise ValueError(f"unknown learned optimizer {name!r}; choose one of "
                     f"{learned_optimizers()}")
  return LEARNERS.get(name).make_rule(options)


def as_optax(rule, theta, num_steps: int) -> optax.GradientTransformationExtraArgs:
  """``rule`` with meta-parameters ``theta`` as an optax transformation.

  Args:
    rule: an update rule (:class:`~metalearn.learners.mlp_lopt.MLPLOpt`, ...).
    theta: its trained meta-parameters.
    num_steps: the training horizon the optimizer is told (its training-progress features).

  ``update`` needs ``params``, and ``loss=`` when ``rule.needs_loss``; a missing one raises.
  """

  def init_fn(params):
    return rule.init_state(theta, params, num_steps)

  def update_fn(updates, state, params=None, *, loss=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(f"{type(rule).__name__} needs the parameters: "
                       "tx.update(grads, state, params)")
    if rule.needs_loss and loss is None:
      raise ValueError(f"{type(rule).__name__} needs the loss: "
                       "tx.update(grads, state, params, loss=loss)")
    return rule.update(theta, state, updates, params, loss)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def save(directory: str | pathlib.Path, name: str, options: dict[str, Any], theta) -> None:
  """Writes ``theta`` (orbax) and the rule's name and options (``rule.json``) to
  ``directory``, which must not exist yet."""
  directory = pathlib.Path(directory).absolute()
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (when used: 0.3 s)
  make_rule(name, options)  # fail before writing anything
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(directory / "theta", theta)
  checkpointer.wait_until_finished()
  checkpointer.close()
  (directory / "rule.json").write_text(json.dumps({"name": name, "options": options}, indent=2))


def load(directory: str | pathlib.Path):
  """``(rule, theta)`` saved by :func:`save`."""
  directory = pathlib.Path(directory).absolute()
  meta_path = directory / "rule.json"
  if not meta_path.exists():
    raise FileNotFoundError(f"{meta_path} is missing: {directory} was not written by "
                            "metalearn.learners.export.save")
  meta = json.loads(meta_path.read_text())
  rule = make_rule(meta["name"], meta["options"])
  target = jax.eval_shape(rule.init, jax.random.key(0))
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  with ocp.StandardCheckpointer() as checkpointer:
    theta = checkpointer.restore(directory / "theta", target)
  return rule, theta


def load_optax(directory: str | pathlib.Path, num_steps: int) -> optax.GradientTransformationExtraArgs:
  """The optax transformation of a learned optimizer saved by :func:`save`."""
  rule, theta = load(directory)
  return as_optax(rule, theta, num_steps)
