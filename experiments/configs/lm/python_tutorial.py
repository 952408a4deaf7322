r"""Reading the Python tutorial in order with LoRA fine-tuning (``task.name='python_tutorial'``,
``learner.name='lora_finetune'``): the forgetting matrix over its chapters (the textbook
evaluator), questions graded by execution (its examples) or cloze.

  python experiments/meta_train.py --config=experiments/configs/lm/python_tutorial.py:small \
    --config.model.hf_dir=BASE --config.task.tokenizer=BASE --workdir=/tmp/metalearn/tutorial

The tutorial's sources come from ``$METALEARN_PYTHON_TUTORIAL_DIR`` (or
``--config.task.directory``). Meta-training reads single chapters (what is meta-learned:
``token_weights`` by default, as in ``meta_reading.py``); evaluation reads the whole book in
order. ``BASE``: an HF directory (a model that knows some Python reads it best); without one a
fresh model of ``model.lm`` with the byte-level tokenizer.
``launch/reproduce/lm_python_tutorial.sh`` pretrains such a base on the standard library
(``pretrain.py:small,python``) and tabulates the run. Sizes: ``tiny`` (the tests': two chapters,
a fresh 1-layer model: ``tiny`` 67 s on the 2-core CPU with two other runs beside it, reading
the tutorial and running its examples included) and ``small``.
"""

import ml_collections

SIZES = ("tiny", "small")


def get_config(arg: str = "small") -> ml_collections.ConfigDict:
  size = arg or "small"
  if size not in SIZES:
    raise ValueError(f"unknown config argument {arg!r}: a size {SIZES}")
  c = ml_collections.ConfigDict()
  c.task = dict(name="python_tutorial", directory="", tokenizer="", num_query=8, max_len=128,
                steps_per_chapter=30, rows_per_step=4)
  c.model = dict(name="decoder_lm", hf_dir="")
  c.learner = dict(name="lora_finetune", num_inner_steps=30, rank=8, alpha=16.0,
                   optimizer="adam", init_lr=1e-3, learn=("token_weights",), rows_per_step=4)
  c.estimator = dict(name="truncated_backprop", truncation_length=10)
  c.objective = dict(name="final")
  c.curriculum = dict(name="")
  c.optimizer = dict(learning_rate=3e-3)
  # every chapter measured at chapter ends only: (T+1) C forward passes would dominate
  c.eval = dict(name="textbook", num_books=2, task_batch_size=1, baselines=("random_init",),
                measure="chapter_ends")
  c.mesh, c.monitor = dict(), dict()
  c.meta_batch_size = 2
  c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 100, 10, 10, 50
  if size == "tiny":
    c.task.update(chapters=("introduction", "errors"), num_query=2, max_len=32,
                  steps_per_chapter=2, rows_per_step=2)
    c.model.lm = dict(name="llama", hidden_size=16, intermediate_size=32, num_layers=1,
                      num_heads=2, num_kv_heads=1, head_dim=8)
    c.learner.update(num_inner_steps=2, rank=2, alpha=4.0, rows_per_step=2)
    c.estimator = dict(name="backprop")
    c.compile = dict(optimize=False)
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 2, 2, 2, 2
  return c
