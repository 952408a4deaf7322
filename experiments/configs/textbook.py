r"""Textbook mode: meta-learning to read a book of chapters in order, keeping what was read.

Command (``regression`` or ``omniglot``; ``tiny`` / ``small`` / ``full``; a learner):

  python experiments/meta_train.py \
    --config=experiments/configs/textbook.py:regression,small --workdir=/tmp/textbook

Learners: ``sequential`` (default: every weight adapts from a meta-learned initialisation,
sequential MAML), ``oml`` (Javed & White 2019: only the head adapts; the representation is
meta-learned), and the MAML family (``maml``, ``metasgd``, ``anil``, ``fomaml``, ``reptile``),
which meta-train on single chapters drawn uniformly (``family.single_chapter_family()``) and
are then evaluated reading books like the others. Add ``metasgd_lr`` to meta-learn the
sequential learners' per-parameter step sizes.

Books (``metalearn/tasks/textbook_regression.py``, ``textbook_omniglot.py``):

* ``regression``: compositional regression, chapter c's targets are
  ``sum_{j<=c} a_j sin(w_j x + psi_j)`` with the basis shared by all books and the
  coefficients drawn per book; the chapter is part of the input (a thermometer code).
* ``omniglot``: chapters are alphabets (``n`` characters each, learned class by class), labels
  over all the book's characters; meta-train on background alphabets, evaluate on held-out
  ones (``tiny`` / ``small``: the small Omniglot zips, protocol ``mini``; ``full``: the
  original ``images_background`` / ``images_evaluation`` zips).

The meta-objective of the sequential learners is ``mean``: the area under the whole book's
learning curve (after each exercise, the mean query loss over the chapters read so far), which
rewards learning each chapter fast and keeping the earlier ones; the MAML family uses
``final`` on single chapters. (``progress`` divides a book's curve by its first point, chapter
0's loss before reading, which weights books by 1/L_0 while later chapters enter the curve:
on ``regression,small`` it gave area 0.292, final 0.244, forgetting 0.060 against ``mean``'s
0.107 / 0.192 / 0.185.) Evaluation (metalearn/evaluators/textbook.py) reads
``eval.num_books`` held-out books and reports, per chapter, the loss matrix R[s, c], progress,
forward transfer and forgetting, beside a random initialisation reading the same books.

Hardware and wall time (measured on a 2-core AMD EPYC CPU): tiny runs on one core from a cold
start, compilation and evaluation included (``tiny`` compiles with ``compile.optimize=False``,
and its Omniglot book has one conv layer on 14x14 images; a test fails a tiny run over 3x
these): ``regression,tiny`` 12 s, ``omniglot,tiny`` 21 s. Under load ~6: ``regression,small`` (5 chapters x 10
exercises of 10 points, MLP 40-40, meta-batch 8, 3000 outer steps at ~20 steps/s after 33 s
of compilation) 3.5 minutes including evaluation on 200 books (5 minutes under heavier load). ``omniglot`` runs a Conv-4 through every exercise and
every chapter's queries with second-order meta-gradients, slow on a CPU: one outer step of
``omniglot,small`` (3 alphabets x 5
characters x 2 images, 16 filters, meta-batch 4) took 1.9 s after 85 s of compilation, so its
200 steps at meta-batch 2 are a pipeline check of about 5-8 minutes, not a result (with 32
filters and 5 images per character a step took 8.5 s). ``full`` sizes are for a GPU
(``regression,full``: 10 chapters x 20 exercises, 20k steps; ``omniglot,full``: 5 alphabets
x 10 characters, 20k steps; not measured).
Expected metric (eval.json, ``methods.meta.mse.summary``, ``regression,small``, sequential,
seed 0, 200 held-out books): area 0.107, final 0.192, forgetting 0.185, forward transfer
0.010; ``methods.random_init``: area 0.916, final 1.192, forgetting 0.397.
"""

import ml_collections

BOOKS = ("regression", "omniglot")
SIZES = ("tiny", "small", "full")
LEARNERS = ("sequential", "oml", "maml", "metasgd", "anil", "fomaml", "reptile")


def get_config(arg: str = "regression,small"):
  """``arg``: comma-separated book, size, learner and/or ``metasgd_lr``."""
  book, size, learner, learn_lr = "regression", "small", "sequential", False
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in BOOKS:
      book = token
    elif token in SIZES:
      size = token
    elif token in LEARNERS:
      learner = token
    elif token == "metasgd_lr":
      learn_lr = True
    else:
      raise ValueError(f"unknown config argument {token!r}; use a book from {BOOKS}, a size "
                       f"from {SIZES}, a learner from {LEARNERS} and/or 'metasgd_lr', "
                       "separated by commas")
  sequential = learner in ("sequential", "oml")
  if learn_lr and not sequential:
    raise ValueError("'metasgd_lr' is for the sequential learners; use learner 'metasgd'")
  c = ml_collections.ConfigDict()
  c.task = dict(name=f"textbook_{book}")
  c.model = dict(name="mlp" if book == "regression" else "conv4")
  c.learner = dict(name=learner)
  c.estimator = dict(name="reptile" if learner == "reptile" else "backprop")
  c.objective = dict(name="mean" if sequential else "final")
  c.curriculum = dict(name="")
  c.eval, c.optimizer, c.mesh, c.monitor = dict(), dict(), dict(), dict()
  if sequential:
    c.learner.learn_inner_lr = learn_lr
  else:
    c.learner.num_inner_steps = 5
  c.optimizer.clip_grad_norm = 10.0  # long unrolls: an occasional large meta-gradient
  t = c.task
  if book == "regression":
    c.learner.inner_lr = 0.02
    c.model.hidden = {"tiny": (16, 16), "small": (40, 40), "full": (128, 128, 128)}[size]
    t.update({"tiny": dict(num_chapters=3, exercises_per_chapter=4, batch_size=5, num_query=10),
              "small": dict(num_chapters=5, exercises_per_chapter=10, batch_size=10,
                            num_query=20),
              "full": dict(num_chapters=10, exercises_per_chapter=20, batch_size=10,
                           num_query=100)}[size])
  else:
    c.learner.inner_lr = 0.1
    c.model.update(norm="layer", filters={"tiny": 8, "small": 16, "full": 64}[size])
    if size == "tiny":  # one conv layer on 14x14 images: compiles in a fifth of Conv-4's time
      c.model.num_layers, t.image_size = 1, 14
    t.update({"tiny": dict(protocol="mini", num_chapters=2, num_ways=3, num_support=2,
                           batch_size=2, num_query=2),
              "small": dict(protocol="mini", num_chapters=3, num_ways=5, num_support=2,
                            batch_size=2, num_query=2),
              "full": dict(protocol="standard", num_chapters=5, num_ways=10, num_support=10,
                           batch_size=10, num_query=10)}[size])
  steps, batch, every = {"tiny": (40, 4, 20), "small": (3000, 8, 500),
                         "full": (20_000, 32, 1000)}[size]
  if book == "omniglot":
    steps, batch, every = {"tiny": (20, 2, 10), "small": (200, 2, 50),
                           "full": (20_000, 8, 1000)}[size]
  c.num_steps, c.meta_batch_size = steps, batch
  c.steps_per_call = c.log_every = every
  c.checkpoint_every = steps if size == "tiny" else 5 * every
  c.eval.num_books = {"tiny": 8, "small": 200 if book == "regression" else 100,
                     "full": 500}[size]
  c.eval.task_batch_size = min(c.eval.num_books, 50)
  if size == "tiny":  # a smoke run: fast compilation over fast steps
    c.compile = dict(optimize=False)
  return c
