"""Curriculum teachers: pure ``init`` / ``propose`` / ``observe`` triples over tasks.

>>> teacher = make_teacher("tscl", ("discrete", 100), window=10)
>>> state = teacher.init(jax.random.key(0))
>>> task = teacher.propose(state, jax.random.key(1))      # int32 arm
>>> state = teacher.observe(state, task, score)           # score: higher is better

A discrete task is an ``int32`` arm in ``[0, n)``; a box task a ``float32[dims]`` point of
``[0, 1]^dims``. See :mod:`metalearn.curriculum.base` for the contract and the registry
(:data:`TEACHERS`, the config's ``curriculum.name``), :mod:`metalearn.curriculum.teachers` and
:mod:`metalearn.curriculum.alp_gmm` for the algorithms and :mod:`metalearn.curriculum.grid`
for the prerequisite-grid test bed.
"""

import numbers

from metalearn.curriculum import alp_gmm, grid, teachers
from metalearn.curriculum.alp_gmm import GMM, ALPGMMState, fit_gmm, select_gmm
from metalearn.curriculum.base import TEACHERS, Teacher, TeacherSpec, TeacherState
from metalearn.curriculum.teachers import (Exp3SState, FixedOrderState, TSCLState, UniformState,
                                           exp3s, fixed_order, tscl, uniform)


def make_teacher(name: str, space: tuple[str, int], **kwargs) -> Teacher:
  """The teacher ``name`` over ``space`` with keyword options ``kwargs``.

  Args:
    name: a registered teacher (``uniform``, ``fixed``, ``tscl``, ``exp3s``, ``alp_gmm``).
    space: ``("discrete", num_tasks)`` or ``("box", dims)``.
    **kwargs: options of the teacher (e.g. ``window`` for ``tscl``).

  Raises:
    ValueError: an unknown name, a space the teacher cannot use, or an unknown option; the
      message lists the valid choices.
  """
  spec = TEACHERS.get(name)
  if (not isinstance(space, (tuple, list)) or len(space) != 2 or space[0] not in spec.spaces
      or not isinstance(space[1], numbers.Integral) or space[1] < 1):
    spaces = " or ".join(f"('{k}', {'num_tasks' if k == 'discrete' else 'dims'})"
                         for k in spec.spaces)
    raise ValueError(f"teacher {name!r} needs a space {spaces} with a positive int size, got "
                     f"{space!r}")
  allowed = [k for k in spec.options if k != "grid"]
  unknown = sorted(set(kwargs) - set(allowed))
  if unknown:
    raise ValueError(f"unknown option(s) {unknown} for teacher {name!r}; valid options: "
                     f"{allowed}")
  return spec.build(kwargs, space)


# The ALP-GMM factory is ``alp_gmm.alp_gmm`` (or make_teacher("alp_gmm", ...)): re-exporting it
# here would shadow the submodule ``metalearn.curriculum.alp_gmm``.
__all__ = ["ALPGMMState", "Exp3SState", "FixedOrderState", "GMM", "TEACHERS", "TSCLState",
           "Teacher", "TeacherSpec", "TeacherState", "UniformState", "alp_gmm", "exp3s",
           "fit_gmm", "fixed_order", "grid", "make_teacher", "select_gmm", "teachers", "tscl",
           "uniform"]
