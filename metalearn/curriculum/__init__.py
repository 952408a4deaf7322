"""Curriculum teachers: pure ``init`` / ``propose`` / ``observe`` triples over tasks.

>>> teacher = make_teacher("tscl", ("discrete", 100), window=10)
>>> state = teacher.init(jax.random.key(0))
>>> task = teacher.propose(state, jax.random.key(1))      # int32 arm
>>> state = teacher.observe(state, task, score)           # score: higher is better

A discrete task is an ``int32`` arm in ``[0, n)``; a box task a ``float32[dims]`` point of
``[0, 1]^dims``. See :mod:`metalearn.curriculum.base` for the contract,
:mod:`metalearn.curriculum.teachers` and :mod:`metalearn.curriculum.alp_gmm` for the algorithms
and :mod:`metalearn.curriculum.grid` for the prerequisite-grid test bed.
"""

import inspect
import numbers

from metalearn.curriculum import alp_gmm, grid, teachers
from metalearn.curriculum.alp_gmm import GMM, ALPGMMState, fit_gmm, select_gmm
from metalearn.curriculum.base import Teacher, TeacherState
from metalearn.curriculum.teachers import (Exp3SState, FixedOrderState, TSCLState, UniformState,
                                           exp3s, fixed_order, tscl, uniform)

# name -> (factory, the space kinds it accepts). Every factory takes the space's size first
# (uniform takes the whole space), then keyword options.
TEACHERS = {
    "uniform": (uniform, ("discrete", "box")),
    "fixed": (fixed_order, ("discrete",)),
    "tscl": (tscl, ("discrete",)),
    "exp3s": (exp3s, ("discrete",)),
    "alp_gmm": (alp_gmm.alp_gmm, ("box",)),
}


def make_teacher(name: str, space: tuple[str, int], **kwargs) -> Teacher:
  """The teacher ``name`` over ``space`` with keyword options ``kwargs``.

  Args:
    name: one of :data:`TEACHERS` (``uniform``, ``fixed``, ``tscl``, ``exp3s``, ``alp_gmm``).
    space: ``("discrete", num_tasks)`` or ``("box", dims)``.
    **kwargs: options of the teacher's factory (e.g. ``window`` for ``tscl``).

  Raises:
    ValueError: an unknown name, a space the teacher cannot use, or an unknown option; the
      message lists the valid choices.
  """
  if name not in TEACHERS:
    raise ValueError(f"unknown teacher {name!r}; valid teachers: {sorted(TEACHERS)}")
  factory, kinds = TEACHERS[name]
  if (not isinstance(space, (tuple, list)) or len(space) != 2 or space[0] not in kinds
      or not isinstance(space[1], numbers.Integral) or space[1] < 1):
    spaces = " or ".join(f"('{k}', {'num_tasks' if k == 'discrete' else 'dims'})" for k in kinds)
    raise ValueError(f"teacher {name!r} needs a space {spaces} with a positive int size, got "
                     f"{space!r}")
  params = list(inspect.signature(factory).parameters)[1:]
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise ValueError(f"unknown option(s) {unknown} for teacher {name!r}; valid options: "
                     f"{params}")
  if name == "uniform":
    return factory((space[0], int(space[1])), **kwargs)
  return factory(int(space[1]), **kwargs)


# The ALP-GMM factory is ``alp_gmm.alp_gmm`` (or make_teacher("alp_gmm", ...)): re-exporting it
# here would shadow the submodule ``metalearn.curriculum.alp_gmm``.
__all__ = ["ALPGMMState", "Exp3SState", "FixedOrderState", "GMM", "TEACHERS", "TSCLState",
           "Teacher", "TeacherState", "UniformState", "alp_gmm", "exp3s", "fit_gmm",
           "fixed_order", "grid", "make_teacher", "select_gmm", "teachers", "tscl", "uniform"]
