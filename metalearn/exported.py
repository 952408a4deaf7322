"""What a trained workdir gives a user: ``WORKDIR/export/``, loaded with one call per kind.

``meta_train.py`` writes it at the end of training, and ``experiments/export.py
--workdir=DIR [--step=N]`` from any checkpoint. It holds ``export.json`` (the learner, its
kind, the checkpoint step and the run's config), the meta-parameters (``theta/``, orbax), a
``README.md`` with the calls below, for a learned optimizer ``optimizer/`` (the rule's name,
options and meta-parameters: :func:`metalearn.learners.export.load_optax` reads it with
nothing else from the run), and what the learner writes for other tools
(:meth:`~metalearn.learners.Learner.export_files`: LoRA readers' adapters in PEFT format)::

  import metalearn

  # a learned optimizer, as an optax transformation
  tx = metalearn.load_optimizer("WORKDIR/export", num_steps=1000)

  # a learner that adapts to a task's support set (MAML family, ProtoNets, LoRA fine-tuning)
  learner = metalearn.load_learner("WORKDIR/export")
  state = learner.adapt(support_x, support_y)   # its inner loop, as meta-trained
  predictions = learner.predict(state, query_x)

  # an in-context learner: predictions of every y_k from x_k and the examples before it
  predictions = learner.predict_prompt(x, y)

Inputs are ``[N, *input_shape]``; a textbook reader's support set is a book's exercises,
``[T, B, *input_shape]``, read one per step (the export's README says which, with the shape).

:func:`load_learner` rebuilds the learner from the run's config (its network, loss and inner
loop), so the task's data must be where the run found it (procedural tasks need nothing);
the calls themselves need no config.
"""

import dataclasses
import functools
import json
import pathlib
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
import orbax.checkpoint as ocp

KINDS = {"episodes": "adapts", "book": "adapts", "prompts": "in_context",
         "training": "optimizer"}
USAGE = {
    "adapts": ("learner = metalearn.load_learner({path!r})\n"
               "state = learner.adapt(support_x, support_y)  # the inner loop, as meta-trained\n"
               "predictions = learner.predict(state, query_x)"),
    "in_context": ("learner = metalearn.load_learner({path!r})\n"
                   "predictions = learner.predict_prompt(x, y)  # every y_k from x_k and the "
                   "examples before it"),
    "optimizer": ("tx = metalearn.load_optimizer({path!r}, num_steps=1000)  # optax\n"
                  "opt_state = tx.init(params)\n"
                  "updates, opt_state = tx.update(grads, opt_state, params)\n"
                  "params = optax.apply_updates(params, updates)"),
}


def kind_of(config: ml_collections.ConfigDict) -> str:
  """The export kind of ``config``'s learner, from the family kind it learns on."""
  from metalearn.learners.base import LEARNERS  # pylint: disable=g-import-not-at-top
  return KINDS[LEARNERS.get(config.learner.name).families[0]]


def export(config: ml_collections.ConfigDict, workdir, step: int | None = None
           ) -> pathlib.Path:
  """Writes ``workdir/export`` from the newest checkpoint (or ``step``); returns its path.
  An existing export is replaced."""
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  from metalearn import evaluators, experiment  # pylint: disable=g-import-not-at-top
  from metalearn.learners import export as lopt_export  # pylint: disable=g-import-not-at-top
  from metalearn.learners.base import LEARNERS  # pylint: disable=g-import-not-at-top
  from metalearn.tasks import TASKS  # pylint: disable=g-import-not-at-top
  config = config_lib.validate(config)
  workdir = pathlib.Path(workdir).absolute()
  exp = experiment.build(config)
  theta, step = evaluators.load_theta(config, workdir, exp, step)
  out = workdir / "export"
  tmp = workdir / "export.tmp"
  if tmp.exists():  # an export interrupted earlier
    shutil.rmtree(tmp)
  tmp.mkdir()
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(tmp / "theta", theta)
  kind = kind_of(config)
  if kind == "optimizer":
    spec = LEARNERS.get(config.learner.name)
    options = {k: config.learner[k] for k in spec.rule_options}
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    lopt_export.save(tmp / "optimizer", config.learner.name, options, theta)
  files = exp.learner.export_files(theta, tmp)
  meta = {"kind": kind, "learner": config.learner.name, "checkpoint_step": int(step),
          "workdir": str(workdir), "files": files, "config": config.to_dict()}
  task_spec = TASKS.get(config.task.name)
  if kind != "optimizer":  # what the calls take; a task with a dataset is rebuilt from it
    meta["family"] = {"input_shape": list(exp.family.input_shape),
                      "kind": config_lib.used_kind(task_spec, LEARNERS.get(config.learner.name))}
  (tmp / "export.json").write_text(json.dumps(meta, indent=2))
  listed = "".join(f"* `{path}`: {what}\n" for what, path in files.items())
  (tmp / "README.md").write_text(
      f"# {config.learner.name}, checkpoint step {step}\n\n```python\nimport metalearn\n"
      + USAGE[kind].format(path=str(out)) + "\n```\n"
      + ("" if kind == "optimizer" else _shapes_line(meta["family"], task_spec))
      + (f"\nAlso here, for other tools:\n\n{listed}" if files else ""))
  if out.exists():
    shutil.rmtree(out)
  tmp.rename(out)  # a complete export or none
  return out


def _shapes_line(family: dict, task_spec) -> str:
  """The export README's line on what the calls take (the task's docstring says what the
  input features are)."""
  shape = ", ".join(map(str, family["input_shape"]))
  about = (f" ({task_spec.inputs} inputs of task `{task_spec.name}`; its module docstring says "
           "what they hold)")
  if family["kind"] == "prompts":
    return f"\n`x` is `[N, {shape}]`{about}.\n"
  if family["kind"] == "book":
    return (f"\n`support_x` is `[T, B, {shape}]`: a book's T exercises of B examples, read one "
            f"per step in order; `query_x` is `[N, {shape}]`{about}.\n")
  return f"\n`support_x` and `query_x` are `[N, {shape}]`{about}.\n"


def _read(path) -> tuple[pathlib.Path, dict]:
  path = pathlib.Path(path).absolute()
  meta_path = path / "export.json"
  if not meta_path.exists():
    raise FileNotFoundError(f"{meta_path} is missing: {path} is not an export; write one with "
                            "python experiments/export.py --workdir=WORKDIR")
  return path, json.loads(meta_path.read_text())


@dataclasses.dataclass(frozen=True, eq=False)
class ExportedLearner:
  """A trained learner with its meta-parameters (see the module docstring).

  Attributes:
    learner: the :class:`~metalearn.learners.Learner`.
    theta: its meta-parameters.
    kind: ``"adapts"``, ``"in_context"`` or ``"optimizer"``.
    checkpoint_step: the meta-training step it was exported at.
    input_shape: one input's shape (``support_x``, ``query_x`` and a prompt's ``x`` are
      ``[N, *input_shape]``); ``None`` for an export that did not record it (nothing checked).
    sequence_inputs: inputs are token rows, whose length may differ from ``input_shape``'s.
    exercises: ``support_x`` is a book's exercises, ``[T, B, *input_shape]``, read one per
      step.
  """
  learner: Any
  theta: Any
  kind: str
  checkpoint_step: int
  input_shape: tuple[int, ...] | None = None
  sequence_inputs: bool = False
  exercises: bool = False

  def _check_inputs(self, name: str, x, leading: tuple[str, ...] = ("N",)) -> jax.Array:
    """``x`` as an array, refused in one line unless it is ``[*leading, *input_shape]``."""
    x = jnp.asarray(x)
    if self.input_shape is None:
      return x
    trailing = tuple(x.shape[len(leading):])
    if x.ndim != len(leading) + len(self.input_shape) or (
        not self.sequence_inputs and trailing != tuple(self.input_shape)):
      want = ", ".join([*leading, *map(str, self.input_shape)])
      raise ValueError(f"{name} has shape {tuple(x.shape)}; this learner takes [{want}] "
                       "(export.json's family; the task's module docstring says what an "
                       "input holds)")
    return x

  def _need(self, kind: str, call: str) -> None:
    if self.kind != kind:
      raise TypeError(f"{call} is for {kind!r} learners; this export is {self.kind!r}: "
                      + USAGE[self.kind].splitlines()[-1])

  def adapt(self, support_x, support_y, num_steps: int | None = None):
    """The learner's inner loop on a support set (``num_steps``: its meta-trained number of
    inner steps by default): the adapted state :meth:`predict` takes."""
    self._need("adapts", "adapt")
    steps = self.learner.num_inner_steps if num_steps is None else num_steps
    support_x = self._check_inputs("support_x", support_x,
                                   ("T", "B") if self.exercises else ("N",))
    return _adapt(self.learner, steps, self.theta, support_x, jnp.asarray(support_y))

  def predict(self, state, x):
    """Predictions for inputs ``x`` after :meth:`adapt`."""
    self._need("adapts", "predict")
    return _predict(self.learner, self.theta, state, self._check_inputs("x", x))

  def predict_prompt(self, x, y):
    """An in-context learner's predictions of every ``y_k`` from ``x_k`` and the examples
    before it."""
    self._need("in_context", "predict_prompt")
    return jax.jit(self.learner.predict_prompt)(self.theta, self._check_inputs("x", x),
                                                jnp.asarray(y))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _adapt(learner, num_steps: int, theta, support_x, support_y):
  from metalearn.tasks import Episode  # pylint: disable=g-import-not-at-top
  episode = Episode(support_x, support_y, support_x[:1], support_y[:1], {})
  state = learner.init_state(theta, episode)
  return jax.lax.fori_loop(0, num_steps, lambda _, s: learner.step(theta, s, episode), state)


@functools.partial(jax.jit, static_argnums=0)
def _predict(learner, theta, state, x):
  return learner.predict(theta, state, x)


def load_learner(path) -> ExportedLearner:
  """The learner of an export directory (``WORKDIR/export``)."""
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  from metalearn import experiment  # pylint: disable=g-import-not-at-top
  from metalearn.tasks import TASKS  # pylint: disable=g-import-not-at-top
  path, meta = _read(path)
  config = config_lib.validate(ml_collections.ConfigDict(meta["config"]))
  # a task that holds a dataset is rebuilt from the shapes the export recorded, without it
  family = experiment.make_family(config, shapes=meta.get("family"))
  learner = experiment.make_learner(config, family)
  target = jax.eval_shape(learner.init, jax.random.key(0))
  with ocp.StandardCheckpointer() as checkpointer:
    theta = checkpointer.restore(path / "theta", target)
  family_meta = meta.get("family", {})
  shape = family_meta.get("input_shape")
  return ExportedLearner(learner, theta, meta["kind"], meta["checkpoint_step"],
                         None if shape is None else tuple(shape),
                         TASKS.get(config.task.name).inputs == "sequence",
                         family_meta.get("kind") == "book")


def load_optimizer(path, num_steps: int) -> optax.GradientTransformationExtraArgs:
  """The learned optimizer of an export directory as an optax transformation, told a
  training horizon of ``num_steps``."""
  from metalearn.learners import export as lopt_export  # pylint: disable=g-import-not-at-top
  path, meta = _read(path)
  if meta["kind"] != "optimizer":
    raise TypeError(f"{path} exports a {meta['learner']!r} learner ({meta['kind']}), not a "
                    "learned optimizer: " + USAGE[meta["kind"]].splitlines()[0])
  return lopt_export.load_optax(path / "optimizer", num_steps)
