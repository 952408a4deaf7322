r"""Meta-learned reading: a pretrained decoder LM reads a chapter about people it has never seen
in ``T`` LoRA fine-tuning steps, then answers questions about them and about people it knew
(``task.name='biography_reading'``, ``learner.name='lora_finetune'``).

  python experiments/meta_train.py --config=experiments/configs/lm/meta_reading.py:small,token_weights \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE --workdir=/tmp/metalearn/reading

``BASE`` is a knowledge-storage pretraining run's model (``experiments/configs/lm/knowledge.py``
with augmentation, ``WORKDIR/model``); the task's ``seed``, ``known_people`` and
``qa_fraction`` must be that run's (the defaults are ``knowledge.py:small``'s).
``launch/reproduce/lm_meta_reading.sh`` pretrains it, tunes the baseline and compares readers.

Arguments (comma-separated): a size, ``tiny`` (the tests': a fresh 1-layer model, seconds),
``small`` (this CPU) or ``gpu``; a reader:

* ``adam``: plain fine-tuning with Adam at ``learner.init_lr`` (``learn=('lr',)`` with no
  meta-training: evaluate it at step 0; the baseline, tuned over ``init_lr`` and
  ``task.replay_share``);
* ``token_weights``: meta-learned per-token loss weights (CaMeLS-style);
* ``token_weights+lr``: the weights and Adam's learning rate (Adam is invariant to the loss's
  scale, so the weights alone only shift its updates between tokens, never enlarge them);
* ``init``: a meta-learned LoRA initialisation (MAML over the adapters);
* ``init+lr``: the initialisation and the learning rate;
* ``lopt``: a learned optimizer over the adapters (``mlp_lopt``, meta-trained with PES unless
  an estimator is named).

an estimator, ``backprop`` (default), ``truncated_backprop`` or ``pes``; ``known=W``: the
probe's weight in the query loss the readers are meta-trained on (``task.known_weight``, 1 by
default; above 1 prices forgetting higher); ``limit=NATS``: the probe enters the query loss
only above NATS (``task.known_limit``: a hinge, the base's probe loss plus the rise allowed);
``kl``: the probe's term is the KL of the reader's answer distributions from the base model's
(``task.known_kl``; with ``limit=NATS``, the KL allowed): a meta-learned initialisation lowers
the probe's answer loss by learning its people's answers, which the KL does not reward;
``prerequisites``: every new person has a mentor from an earlier chapter
(``task.prerequisites``: the order chapters are read in matters); and ``book``: evaluate by
reading books of ``task.book_chapters`` chapters in order (``eval.name='textbook'``: the
forgetting matrix R[s, c], forward transfer, the probe along the book) instead of single
chapters (``few_shot``). A finished run is read as a book with

  python experiments/evaluate.py --workdir=/tmp/metalearn/reading \
    --config=experiments/configs/lm/meta_reading.py:small,token_weights,book \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE
"""

import ml_collections

SIZES = ("tiny", "small", "gpu")
READERS = {"adam": ("lr",), "token_weights": ("token_weights",),
           "token_weights+lr": ("token_weights", "lr"), "init": ("init",),
           "init+lr": ("init", "lr"), "lopt": ("optimizer",)}
ESTIMATORS = ("backprop", "truncated_backprop", "pes")


def _number(token: str, form: str, meaning: str) -> float:
  try:
    return float(token.split("=", 1)[1])
  except ValueError:
    raise ValueError(f"config argument {token!r}: {form} takes a number, {meaning}") from None


def get_config(arg: str = "small,token_weights") -> ml_collections.ConfigDict:
  size, reader, estimator, book, known, limit = "small", "token_weights", None, False, 1.0, 0.0
  prerequisites = kl = False
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in SIZES:
      size = token
    elif token in READERS:
      reader = token
    elif token in ESTIMATORS:
      estimator = token
    elif token == "book":
      book = True
    elif token == "prerequisites":
      prerequisites = True
    elif token == "kl":
      kl = True
    elif token.startswith("limit="):
      limit = _number(token, "limit=NATS", "the probe's loss above which it enters the query "
                      "loss (e.g. limit=0.21)")
    elif token.startswith("known="):
      known = _number(token, "known=W", "the probe's weight in the query loss (e.g. known=4)")
    else:
      raise ValueError(f"unknown config argument {token!r}: a size {SIZES}, a reader "
                       f"{tuple(READERS)}, an estimator {ESTIMATORS}, 'known=W', 'limit=NATS', "
                       "'kl', 'prerequisites' or 'book'")
  estimator = estimator or ("pes" if reader == "lopt" else "backprop")
  c = ml_collections.ConfigDict()
  c.task = dict(name="biography_reading", known_people=300, qa_fraction=0.5,
                num_chapters=50, eval_chapters=10, people_per_chapter=4, num_known=24,
                tokenizer="", known_weight=known, known_limit=limit, known_kl=kl,
                prerequisites=prerequisites)
  c.model = dict(name="decoder_lm", hf_dir="")  # the launch script sets hf_dir and tokenizer
  c.learner = dict(name="lora_finetune", num_inner_steps=30, rank=8, alpha=16.0,
                   optimizer="adam", init_lr=1e-3, learn=READERS[reader], rows_per_step=4)
  if reader == "lopt":  # step_mult: an untrained rule's updates near 1e-3, Adam's scale here
    c.learner.update(optimizer="mlp_lopt", lopt=dict(step_mult=0.1))
  c.estimator = dict(name=estimator)
  if estimator in ("truncated_backprop", "pes"):
    c.estimator.truncation_length = 10
  c.objective = dict(name="final")
  c.curriculum = dict(name="")
  c.optimizer = dict(learning_rate=3e-3)
  c.eval = dict(num_tasks=10, num_query=24, num_inner_steps=30, report_steps=(0, 5, 10, 20, 30),
                baselines=("initial",), num_plot_tasks=0)
  c.mesh, c.monitor = dict(), dict()
  c.meta_batch_size = 2
  c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 200, 10, 10, 50
  if size == "tiny":
    c.task.update(known_people=16, num_chapters=4, eval_chapters=2, people_per_chapter=2,
                  multiplicity=2, num_query=12, num_known=4, book_chapters=2,
                  steps_per_chapter=3, rows_per_step=2)
    c.model.lm = dict(name="llama", hidden_size=16, intermediate_size=32, num_layers=1,
                      num_heads=2, num_kv_heads=1, head_dim=8)
    c.learner.update(num_inner_steps=3, rank=2, alpha=4.0, rows_per_step=2)
    if estimator != "backprop":
      c.estimator.truncation_length = 1
    c.compile = dict(optimize=False)
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 4, 2, 2, 2
    c.eval.update(num_tasks=2, num_query=12, num_inner_steps=3, report_steps=(0, 3))
  elif size == "gpu":
    c.task.update(known_people=10_000, num_chapters=500, eval_chapters=20,
                  people_per_chapter=16, num_query=96, num_known=96)
    c.learner.rows_per_step = 16
    c.meta_batch_size = 8
    c.num_steps = 1000
    c.eval.update(num_tasks=20, num_query=96)
  if book:  # the same run, read as books of chapters in order
    c.eval = dict(name="textbook", num_books=2 if size == "tiny" else 10, task_batch_size=10,
                  baselines=("random_init",))
  return c
