r"""Meta-learning LoRA fine-tuning of a decoder LM: read a made-up person's biography in k
fine-tuning steps, then answer questions about them (``task.name='biographies'``,
``learner.name='lora_finetune'``).

  python experiments/meta_train.py --config=experiments/configs/lm/meta_finetune.py:small \
    --workdir=/tmp/metalearn/lm_meta_finetune

Arguments (comma-separated): a size, ``tiny`` (what the tests run: ``tiny`` 26 s on one core
of a 2-core CPU, cold start, compilation and evaluation included) or ``small`` (default: 600
outer steps in about 3.5 minutes on that CPU; results/lm_meta_finetune.md); an estimator, ``backprop`` (default), ``truncated_backprop``,
``pes`` or ``es``; and what is meta-learned, ``+init``, ``+lr``, ``+token_weights`` (default
``+init+lr``). E.g. ``:tiny,pes,+lr+token_weights``.

The base model is a fresh one of ``model.lm`` unless ``--config.model.hf_dir`` names an HF
directory (e.g. the export of ``experiments/lm_pretrain.py``, ``WORKDIR/model``); then set
``--config.task.tokenizer`` to the same directory. Evaluation (``few_shot``) reports the
query answers' exact-match accuracy and loss after each fine-tuning step on people of the test
split, beside the same learner before meta-training (``initial``).
"""

import ml_collections

SIZES = ("tiny", "small")
ESTIMATORS = ("backprop", "truncated_backprop", "pes", "es")
PARTS = ("init", "lr", "token_weights")


def get_config(arg: str = "small") -> ml_collections.ConfigDict:
  size, estimator, learn = "small", "backprop", ("init", "lr")
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in SIZES:
      size = token
    elif token in ESTIMATORS:
      estimator = token
    elif token.startswith("+"):
      learn = tuple(p for p in token.split("+") if p)
      bad = [p for p in learn if p not in PARTS]
      if bad:
        raise ValueError(f"unknown meta-learned part(s) {bad}: from {PARTS}, as '+init+lr'")
    else:
      raise ValueError(f"unknown config argument {token!r}: a size from {SIZES}, an estimator "
                       f"from {ESTIMATORS}, or '+part+part' from {PARTS}")

  c = ml_collections.ConfigDict()
  c.task = dict(name="biographies", num_support=2, num_query=6)
  c.model = dict(name="decoder_lm")
  c.learner = dict(name="lora_finetune", num_inner_steps=4, rank=8, alpha=16.0,
                   optimizer="adam", init_lr=3e-3, learn=learn, rows_per_step=1)
  c.estimator = dict(name=estimator)
  if estimator in ("truncated_backprop", "pes"):
    c.estimator.truncation_length = 2
  c.objective = dict(name="final")
  c.curriculum = dict(name="")
  c.optimizer = dict(learning_rate=1e-3)
  c.eval = dict(num_tasks=200, num_inner_steps=4, report_steps=(0, 1, 2, 4))
  c.mesh, c.monitor = dict(), dict()
  if size == "tiny":
    c.task.update(num_people=32, eval_people=8, attributes=("city", "field"), num_query=2)
    c.model.lm = dict(name="llama", hidden_size=16, intermediate_size=32, num_layers=1,
                      num_heads=2, num_kv_heads=1, head_dim=8)
    c.learner.update(num_inner_steps=2, rank=2, alpha=4.0)
    c.meta_batch_size = 2
    c.compile = dict(optimize=False)
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 4, 2, 2, 2
    c.eval.update(num_tasks=4, num_query=2, num_inner_steps=2, report_steps=(0, 2),
                  num_plot_tasks=0)
  else:
    c.task.update(num_people=1000, eval_people=200,
                  attributes=("city", "university", "field"), num_query=3)
    c.model.lm = dict(name="llama", hidden_size=32, intermediate_size=86, num_layers=2,
                      num_heads=4, num_kv_heads=2, head_dim=8)
    c.meta_batch_size = 4
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 600, 50, 50, 300
    c.eval.num_query = 3
  return c
