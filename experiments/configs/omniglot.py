r"""Few-shot Omniglot classification: the MAML family and Prototypical Networks.

Commands (``ways=``, ``shots=``; ``mini`` selects Omniglot-mini, the offline CPU protocol;
``tiny`` shrinks everything for a smoke test):

  # full protocol, Omniglot from tfds (prepared with file_format="array_record"):
  python experiments/meta_train.py --workdir=/tmp/omniglot_maml_5w1s \
    --config=experiments/configs/omniglot.py:maml,ways=5,shots=1,source=tfds
  # Omniglot-mini from the original zips (this repository's tests: ../shared/data/omniglot):
  METALEARN_OMNIGLOT_DIR=../shared/data/omniglot python experiments/meta_train.py \
    --config=experiments/configs/omniglot.py:maml,ways=5,shots=1,mini \
    --workdir=/tmp/omniglot_mini_maml_5w1s

Learners: ``maml`` (default), ``fomaml``, ``metasgd``, ``anil``, ``reptile``, ``protonet``.

Full protocol (Finn et al. 2017, section 5.2 and their code): 1623 characters, 1100 meta-train
/ 100 validation / 423 test, each rotated by 0/90/180/270 degrees as new classes; 28x28;
Conv-4 (64 filters, batch statistics, max-pool); Adam 1e-3; 60k outer steps; 5-way: 1 inner
step of 0.4, meta-batch 32; 20-way: 5 inner steps of 0.1, meta-batch 16; query set K images
per class while meta-training; evaluation on 1000 test episodes with 10 inner steps.
Reptile (Nichol et al. 2018) meta-trains with 5 (5-way) or 10 (20-way) SGD inner steps of
0.1 here (the paper's inner loop is Adam; ours is SGD), meta-batch 5, Adam 1e-3 on the
pseudo-gradient. ProtoNets (Snell et al. 2017): Adam 1e-3, 5 query images per class.

Omniglot-mini (sized for a 2-core CPU): meta-train on the 136 characters of
images_background_small1 x 4 rotations, test on the 106 characters of
images_background_small2 not in small1 (unrotated), 1000 test episodes (5 query images per
class); MAML: meta-batch 8 / 3,000 outer steps (1-shot), meta-batch 4 / 1,600 steps (5-shot);
ProtoNets: one episode per step, 8,000 (1-shot) / 5,000 (5-shot) steps. Measured wall
times and accuracies: results/omniglot.md (launch/reproduce/omniglot.sh small). Tiny runs
(one core, cold start, the Omniglot cache built, compilation and evaluation included; ``tiny``
compiles with ``compile.optimize=False``; a test fails a tiny run over 3x these):
``maml,tiny`` 27 s, ``protonet,tiny`` 20 s.
"""

import ml_collections

LEARNERS = ("maml", "fomaml", "metasgd", "anil", "reptile", "protonet")


def get_config(arg: str = "maml"):
  """``arg``: comma-separated learner, ``ways=N``, ``shots=K``, ``mini``, ``source=zip|tfds``,
  ``tiny``."""
  learner, ways, shots, mini, source, tiny = "maml", 5, 1, False, "zip", False
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in LEARNERS:
      learner = token
    elif token.startswith("ways="):
      ways = int(token[5:])
    elif token.startswith("shots="):
      shots = int(token[6:])
    elif token.startswith("source="):
      source = token[7:]
    elif token in ("mini", "tiny"):
      mini, tiny = mini or token == "mini" or token == "tiny", tiny or token == "tiny"
    else:
      raise ValueError(f"unknown config argument {token!r}; use a learner from {LEARNERS}, "
                       "'ways=N', 'shots=K', 'mini', 'source=zip|tfds' and/or 'tiny'")

  c = ml_collections.ConfigDict()
  c.task = dict(name="few_shot", dataset="omniglot", source=source, num_ways=ways,
                num_support=shots, num_query=shots, protocol="mini" if mini else "standard",
                rotate_eval=not mini)
  c.model = dict(name="conv4")
  c.learner = dict(name=learner)
  if learner != "protonet":
    c.learner.update(inner_lr=0.4 if ways <= 5 else 0.1,
                     num_inner_steps=1 if ways <= 5 else 5)
  c.estimator = dict(name="reptile" if learner == "reptile" else "backprop")
  c.objective = dict(name="final")
  c.curriculum = dict(name="")
  c.optimizer, c.mesh, c.monitor = dict(), dict(), dict()
  c.meta_batch_size = 32 if ways <= 5 else 16
  c.num_steps = 60_000
  c.steps_per_call = 100
  c.log_every = 500
  c.checkpoint_every = 5000
  c.eval = dict(split="test", num_tasks=1000, num_query=5, num_inner_steps=10,
                report_steps=(0, 1, 5, 10), baselines=("random_init",),
                finetune_lrs=(0.01, 0.03, 0.1, 0.3), num_tuning_tasks=100, num_plot_tasks=3)
  if learner == "reptile":
    c.learner.inner_lr = 0.1
    c.learner.num_inner_steps = 5 if ways <= 5 else 10
    c.meta_batch_size = 5
  if learner == "protonet":
    c.task.num_query = 5
    c.eval.update(num_inner_steps=0, report_steps=(0,), baselines=())
  if mini:
    c.meta_batch_size = min(c.meta_batch_size, 8 if shots == 1 else 4)
    c.num_steps = 3000 if shots == 1 else 1600
    if learner == "protonet":  # one episode per outer step, as Snell et al.
      c.meta_batch_size = 1
      c.num_steps = 8000 if shots == 1 else 5000
    c.log_every = 200
    c.checkpoint_every = 1000
    c.eval.baselines = ()
  if tiny:  # two conv layers on 14x14 images: compiles in a fraction of Conv-4's time
    c.compile = dict(optimize=False)  # a smoke run: fast compilation over fast steps
    c.model.update(filters=8, num_layers=2)
    c.task.image_size = 14
    c.meta_batch_size = 2
    c.num_steps = 6
    c.steps_per_call = 3
    c.log_every = 3
    c.checkpoint_every = 6
    # no fine-tuned baseline (4 s of compilation): maml_sinusoid.py's tiny runs run it
    c.eval.update(num_tasks=8, num_tuning_tasks=4, num_plot_tasks=2, num_query=2, baselines=())
    if learner != "protonet":
      c.eval.update(num_inner_steps=2, report_steps=(0, 1, 2))
  return c


TITLE = "Few-shot Omniglot classification (Finn et al. 2017; Snell et al. 2017)"
REFERENCES = {
    "Finn17": "Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep "
              "Networks. ICML 2017, arXiv:1703.03400, Table 1 (MAML and first-order MAML, "
              "5-way 1-shot / 5-shot, 20-way 1-shot / 5-shot).",
    "Nichol18": "Nichol, Achiam, Schulman. On First-Order Meta-Learning Algorithms. "
                "arXiv:1803.02999 (v3), Table 1, Reptile (non-transductive).",
    "Snell17": "Snell, Swersky, Zemel. Prototypical Networks for Few-shot Learning. NeurIPS "
               "2017, arXiv:1703.05175, Table 1 (Omniglot, Vinyals split): 98.8 / 99.7 / "
               "96.0 / 98.9.",
}
# Published accuracies (%) keyed by (learner, ways, shots), full protocol.
PUBLISHED = {
    ("maml", 5, 1): "98.7 ± 0.4 [Finn17]", ("maml", 5, 5): "99.9 ± 0.1 [Finn17]",
    ("maml", 20, 1): "95.8 ± 0.3 [Finn17]", ("maml", 20, 5): "98.9 ± 0.2 [Finn17]",
    ("fomaml", 5, 1): "98.3 ± 0.5 [Finn17]", ("fomaml", 5, 5): "99.2 ± 0.2 [Finn17]",
    ("fomaml", 20, 1): "89.4 ± 0.5 [Finn17]", ("fomaml", 20, 5): "97.9 ± 0.1 [Finn17]",
    ("reptile", 5, 1): "95.39 ± 0.09 [Nichol18]", ("reptile", 5, 5): "98.90 ± 0.10 [Nichol18]",
    ("reptile", 20, 1): "88.14 ± 0.15 [Nichol18]",
    ("reptile", 20, 5): "96.65 ± 0.33 [Nichol18]",
    ("protonet", 5, 1): "98.8 [Snell17]", ("protonet", 5, 5): "99.7 [Snell17]",
    ("protonet", 20, 1): "96.0 [Snell17]", ("protonet", 20, 5): "98.9 [Snell17]",
}
# Bars the Omniglot-mini run must reach (issue 3), keyed by (learner, ways, shots).
MINI_BARS = {("maml", 5, 1): 88.0, ("maml", 5, 5): 95.0, ("protonet", 5, 1): 85.0,
             ("protonet", 5, 5): 95.0}
