r"""Knowledge storage and extraction (Physics of Language Models 3.1): a decoder LM trained on the
biography textbook (:mod:`metalearn.lm.biography_book`), asked about people whose questions it
never saw.

  python experiments/lm_pretrain.py --config=experiments/configs/lm/knowledge.py:small,augmented \
    --workdir=/tmp/metalearn/knowledge

Arguments (comma-separated): a size, ``tiny`` (the tests'), ``small`` (this CPU), ``gpu`` (one
H200, 10 minutes), ``full`` (the paper's scale); the writing, ``plain`` (bioS single: one
biography per person, the full name in its first sentence only) or ``augmented`` (five
biographies per person, fresh templates, shuffled sentences, the full name in every sentence);
the training text, ``bios+qa`` (mix training: every biography and the questions of half the
people), ``bios`` (pretraining alone) or ``qa`` (fine-tuning on the questions of that half:
``--config.init_from=PRETRAINED/model``). Every evaluation reports exact-answer accuracy on the
trained half's questions (``qa_train``) and the other half's (``qa_test``), overall and per
attribute. ``launch/reproduce/lm_knowledge_storage.sh`` runs both protocols over seeds.
"""

import ml_collections

SIZES = ("tiny", "small", "gpu", "full")
WRITING = ("plain", "augmented")
PARTS = ("bios+qa", "bios", "qa")


def get_config(arg: str = "small,augmented") -> ml_collections.ConfigDict:
  args = [a for a in (arg or "").split(",") if a]
  size = next((a for a in args if a in SIZES), "small")
  writing = next((a for a in args if a in WRITING), "augmented")
  parts = next((a for a in args if a in PARTS), "bios+qa")
  unknown = [a for a in args if a not in SIZES + WRITING + PARTS]
  if unknown:
    raise ValueError(f"arguments {unknown}: a size {SIZES}, a writing {WRITING}, a training "
                     f"text {PARTS}")
  augmented = writing == "augmented"
  c = ml_collections.ConfigDict()
  c.size, c.seed, c.init_from = size, 0, ""
  c.mesh = dict(data=1, fsdp=-1, tensor=1)
  c.corpus = dict(name="knowledge", num_people=300, parts=parts, qa_fraction=0.5,
                  multiplicity=5 if augmented else 1, permute=augmented, fullname=augmented,
                  qa_eval_people=150)
  c.sample = dict(prompt="What is the birth city of", max_tokens=16)
  c.optimizer = dict(learning_rate=3e-3, warmup_steps=100, weight_decay=0.1, b1=0.9, b2=0.95,
                     clip_grad_norm=1.0)
  c.tokenizer = dict(kind="bpe", vocab_size=1024)
  if size == "tiny":
    c.lm = dict(name="llama", hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                num_kv_heads=2, head_dim=8)
    c.tokenizer.vocab_size = 320
    c.corpus.update(num_people=16, qa_eval_people=8)
    c.optimizer.warmup_steps = 5
    c.update(batch_size=8, seq_len=64, num_steps=20, steps_per_call=10, eval_every=10,
             checkpoint_every=10, eval_sequences=8)
    c.sample.max_tokens = 8
  elif size == "small":
    c.lm = dict(name="llama", hidden_size=128, intermediate_size=384, num_layers=4,
                num_heads=4, num_kv_heads=2, head_dim=32)
    c.update(batch_size=32, seq_len=128, num_steps=2400, steps_per_call=100,
             eval_every=300, checkpoint_every=300, eval_sequences=32)
  elif size == "gpu":
    c.lm = dict(name="llama", hidden_size=512, intermediate_size=1536, num_layers=8,
                num_heads=8, num_kv_heads=4, head_dim=64, dtype="bfloat16")
    c.corpus.update(num_people=10_000, qa_eval_people=1000)
    c.tokenizer.vocab_size = 4096
    c.update(batch_size=128, seq_len=256, num_steps=6000, steps_per_call=200,
             eval_every=1000, checkpoint_every=1000, eval_sequences=128)
  else:  # the paper's bioS scale: 100k people, a GPT-2-small-sized Llama
    c.lm = dict(name="llama", hidden_size=768, intermediate_size=3072, num_layers=12,
                num_heads=12, num_kv_heads=12, head_dim=64, dtype="bfloat16")
    c.corpus.update(num_people=100_000, qa_eval_people=2000)
    c.tokenizer.vocab_size = 8192
    c.optimizer.update(learning_rate=1e-3, warmup_steps=1000)
    c.update(batch_size=96, seq_len=512, num_steps=80_000, steps_per_call=200,
             eval_every=5000, checkpoint_every=5000, eval_sequences=256)
  if parts == "qa":  # fine-tuning a pretrained model on the trained half's questions
    c.optimizer.update(learning_rate=c.optimizer.learning_rate / 3, warmup_steps=0)
    if size != "tiny":  # a fifth of pretraining's steps (many epochs of the questions)
      c.update(num_steps=c.num_steps // 5, eval_every=c.eval_every // 5,
               checkpoint_every=c.eval_every // 5, steps_per_call=c.eval_every // 5)
  return c
