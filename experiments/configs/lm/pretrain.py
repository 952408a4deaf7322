r"""Pretrains a base decoder LM (Llama or Qwen3 layers) on an offline corpus and exports it as an
HF-format directory with its tokenizer: the default base model of the LM experiments.

  python experiments/lm_pretrain.py --config=experiments/configs/lm/pretrain.py:small \
    --workdir=/tmp/metalearn/lm_small

Sizes (``:SIZE``; ``--config.lm.name=qwen3`` switches the architecture):

* ``tiny``: 20 s (one core, cold, compilation included); what the tests run.
* ``small`` (default): a 2.6M-parameter Llama on procedural biographies, about 8 minutes on a
  2-core CPU (results/lm_pretrain.md has the measured run: command, time, losses, a sample).
* ``gpu``: an 88M-parameter model, 3,000 steps of 64 x 1,024 tokens in bfloat16 (about 110
  PFLOP: some 6 minutes of compute at 300 TFLOP/s, a third of an H200's dense bfloat16 peak,
  plus corpus and BPE preparation), sized for 10 minutes on one H200. An estimate from the
  FLOP count, not yet a measured run.
* ``full``: a 1.04B-parameter Llama-3-style model for a pod slice, FSDP over every device:
  the shape of a real run (supply a real corpus with ``corpus.name=files``).

``:SIZE,python`` pretrains on Python source instead: the standard library's top-level modules
of the interpreter running it (``corpus.name=files``, some 4.7 MB on CPython 3.11: no
download), with a larger BPE vocabulary for code; ``small,python`` trains 1,200 steps. This is
the base model of the Python tutorial textbook (``experiments/configs/lm/python_tutorial.py``):
a model that knows some Python reads it.

The run resumes from its workdir; ``WORKDIR/model`` is the export, ``WORKDIR/summary.json`` the
final losses, throughput and a greedy sample.
"""

import sysconfig

import ml_collections

SIZES = ("tiny", "small", "gpu", "full")
CORPORA = ("python",)


def get_config(arg: str = "small") -> ml_collections.ConfigDict:
  size, corpus = "small", None
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in SIZES:
      size = token
    elif token in CORPORA:
      corpus = token
    else:
      raise ValueError(f"config argument {token!r}: a size {SIZES} or a corpus {CORPORA}")
  c = ml_collections.ConfigDict()
  c.size = size
  c.seed = 0
  c.mesh = dict(data=1, fsdp=-1, tensor=1)
  c.sample = dict(prompt="Ada Lovelace was born on", max_tokens=48)
  c.optimizer = dict(learning_rate=3e-3, warmup_steps=50, weight_decay=0.1, b1=0.9, b2=0.95,
                     clip_grad_norm=1.0)
  c.tokenizer = dict(kind="bpe", vocab_size=512)
  c.corpus = dict(name="biographies", num_people=2000, docs_per_person=4, eval_people=200)
  if size == "tiny":
    c.lm = dict(name="llama", hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                num_kv_heads=2, head_dim=8)
    c.tokenizer.vocab_size = 300
    c.corpus.update(num_people=40, docs_per_person=2, eval_people=8)
    c.update(batch_size=8, seq_len=32, num_steps=20, steps_per_call=10, eval_every=10,
             checkpoint_every=10, eval_sequences=8)
    c.sample.max_tokens = 8
  elif size == "small":
    c.lm = dict(name="llama", hidden_size=192, intermediate_size=512, num_layers=6,
                num_heads=6, num_kv_heads=2, head_dim=32)
    c.update(batch_size=32, seq_len=128, num_steps=450, steps_per_call=50, eval_every=150,
             checkpoint_every=150, eval_sequences=64)
  elif size == "gpu":
    c.lm = dict(name="llama", hidden_size=768, intermediate_size=2048, num_layers=12,
                num_heads=12, num_kv_heads=4, head_dim=64, dtype="bfloat16")
    c.tokenizer.vocab_size = 8192
    c.corpus.update(num_people=250_000, docs_per_person=8, eval_people=2000)
    c.optimizer.update(learning_rate=1e-3, warmup_steps=200)
    c.update(batch_size=64, seq_len=1024, num_steps=3000, steps_per_call=100, eval_every=500,
             checkpoint_every=500, eval_sequences=256)
  else:
    c.lm = dict(name="llama", hidden_size=2048, intermediate_size=8192, num_layers=16,
                num_heads=32, num_kv_heads=8, head_dim=64, dtype="bfloat16", remat="dots",
                rope_theta=500000.0, tie_word_embeddings=True)
    c.tokenizer.vocab_size = 32768
    c.corpus.update(num_people=1_000_000, docs_per_person=8, eval_people=10_000)
    c.optimizer.update(learning_rate=3e-4, warmup_steps=2000)
    c.update(batch_size=512, seq_len=2048, num_steps=100_000, steps_per_call=100,
             eval_every=1000, checkpoint_every=1000, eval_sequences=1024)
  if corpus == "python":
    c.corpus = dict(name="files", directory=sysconfig.get_paths()["stdlib"], patterns=("*.py",),
                    eval_fraction=0.05)
    c.sample = dict(prompt="def ", max_tokens=48)
    if size == "small":
      c.tokenizer.vocab_size = 1024
      c.num_steps = 1200
  return c
