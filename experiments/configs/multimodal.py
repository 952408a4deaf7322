r"""MAML-family meta-learning on multimodal few-shot regression (after Vuorio et al. 2019).

Tasks mix five function families (sinusoid, line, quadratic, l1, tanh; see
``metalearn/tasks/multimodal.py``); one initialisation has to adapt to all of them.

Command (any learner; ``k=`` sets K; ``teacher=<name>`` lets a teacher choose the mode of each
outer step's tasks; ``small`` shrinks it for a quick CPU check, ``tiny`` to seconds):

  python experiments/meta_train.py \
    --config=experiments/configs/multimodal.py:maml,k=10 --workdir=/tmp/multimodal

Settings: the sinusoid benchmark's (40-40 ReLU MLP, inner SGD step 0.01, one inner step while
meta-training, meta-batch 25, Adam 1e-3), 70k outer steps; evaluation on 600 fresh tasks with
noise std 0.3 on every observed ``y``, so no method goes below an MSE of 0.09.

Wall time (measured on one core of a 2-core AMD EPYC CPU, cold start, compilation and
evaluation included; ``tiny`` compiles with ``compile.optimize=False``; a test fails a tiny run
over 3x this): ``tiny`` 16 s.
"""

import ml_collections

LEARNERS = ("maml", "fomaml", "metasgd", "anil", "reptile")


def get_config(arg: str = "maml"):
  """``arg``: comma-separated learner name, ``k=<K>``, ``teacher=<name>`` and ``small`` /
  ``tiny``."""
  learner, k, teacher, small, tiny = "maml", 10, "", False, False
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in LEARNERS:
      learner = token
    elif token.startswith("k="):
      k = int(token[2:])
    elif token.startswith("teacher="):
      teacher = token[len("teacher="):]
    elif token == "small":
      small = True
    elif token == "tiny":
      tiny = True
    else:
      raise ValueError(f"unknown config argument {token!r}; use a learner from {LEARNERS}, "
                       "'k=<K>', 'teacher=<name>' and/or 'small' / 'tiny', separated by commas")

  c = ml_collections.ConfigDict()
  c.task = dict(name="multimodal_regression", num_support=k, num_query=k)
  c.model = dict(name="mlp")
  c.learner = dict(name=learner)
  c.estimator = dict(name="reptile" if learner == "reptile" else "backprop")
  c.objective = dict(name="final")
  c.curriculum = dict(name=teacher)
  c.eval = dict()
  c.optimizer, c.mesh, c.monitor = dict(), dict(), dict()
  if learner == "reptile":
    c.learner.num_inner_steps = 5
  if small:
    c.num_steps, c.log_every, c.checkpoint_every = 3000, 500, 1500
    c.eval.update(num_tasks=600, pretrain_steps=2000)
  if tiny:  # seconds: the tests' size
    c.compile = dict(optimize=False)  # a smoke run: fast compilation over fast steps
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 200, 100, 100, 100
    c.eval.update(num_tasks=20, pretrain_steps=100, num_tuning_tasks=20)
  return c
