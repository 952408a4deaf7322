r"""MAML-family meta-learning on K-shot sinusoid regression (Finn et al. 2017, section 5.1).

Command (any learner; ``k=`` sets K; ``small`` shrinks it for a quick CPU check, ``tiny`` to
seconds for the tests):

  python experiments/meta_train.py \
    --config=experiments/configs/maml_sinusoid.py:maml,k=10 --workdir=/tmp/maml_sinusoid

Learners: ``maml`` (default), ``fomaml``, ``metasgd``, ``anil``, ``reptile``.

Paper settings: 40-40 ReLU MLP, inner SGD step 0.01, one inner step while meta-training,
meta-batch 25, Adam 1e-3, 70k outer steps; evaluation on 600 fresh tasks, 10 inner steps.
Reptile (Nichol et al. 2018): 5 inner steps of 0.01 while meta-training; Adam 1e-3 on the
meta-batch mean of ``theta - phi`` (the paper's outer SGD with a linearly annealed step, and an
inner step of 0.02, diverge at K=5 on this network).

Hardware and wall time (measured): on a 2-core AMD EPYC CPU, ``maml,k=10`` meta-trains at about
1,400 outer steps/s (50 s) and the whole command, evaluation and baselines included, takes
1.5 minutes; ``small`` takes about 30 s.
Tiny runs (one core of that CPU, cold start, compilation and evaluation included; ``tiny``
compiles with ``compile.optimize=False``; a test fails a tiny run over 3x these):
``maml,tiny`` 13 s, ``reptile,tiny`` 13 s.
Expected metric (eval.json, methods.meta.mse[1], query MSE after one inner step, 600 tasks):
MAML 0.33 ± 0.03 at K=10 (0.62 at K=5, 0.19 at K=20); Meta-SGD 0.23 at K=10; see
results/maml_sinusoid.md for every learner and K.
"""

import ml_collections

LEARNERS = ("maml", "fomaml", "metasgd", "anil", "reptile")


def get_config(arg: str = "maml"):
  """``arg``: comma-separated learner name, ``k=<K>`` and ``small``."""
  learner, k, small, tiny = "maml", 10, False, False
  for token in filter(None, (t.strip() for t in (arg or "").split(","))):
    if token in LEARNERS:
      learner = token
    elif token.startswith("k="):
      k = int(token[2:])
    elif token == "small":
      small = True
    elif token == "tiny":
      tiny = True
    else:
      raise ValueError(f"unknown config argument {token!r}; use a learner from {LEARNERS}, "
                       "'k=<K>' and/or 'small' / 'tiny', separated by commas")

  c = ml_collections.ConfigDict()
  c.task = dict(name="sinusoid", num_support=k, num_query=k)
  c.model = dict(name="mlp")
  c.learner = dict(name=learner)
  c.estimator = dict(name="backprop")
  c.objective = dict(name="final")
  c.curriculum = dict(name="")
  c.eval = dict()
  c.optimizer, c.mesh, c.monitor = dict(), dict(), dict()
  if learner == "reptile":
    c.estimator.name = "reptile"
    c.learner.num_inner_steps = 5
  if small:
    c.num_steps = 3000
    c.log_every = 500
    c.checkpoint_every = 1500
    c.eval.update(num_tasks=600, pretrain_steps=2000)
  if tiny:  # seconds: the tests' size
    c.compile = dict(optimize=False)  # a smoke run: fast compilation over fast steps
    c.num_steps, c.steps_per_call, c.log_every, c.checkpoint_every = 200, 100, 100, 100
    # as many evaluation as tuning tasks: one compiled task sampler serves both
    c.eval.update(num_tasks=20, pretrain_steps=100, num_tuning_tasks=20)
  return c


# Published numbers beside which launch/reproduce/maml_sinusoid.sh puts ours: query MSE after
# one inner step, keyed by (learner, K).
TITLE = "MAML-family sinusoid regression (Finn et al. 2017, section 5.1)"
REFERENCES = {
    "Finn17": "Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep "
              "Networks. ICML 2017, arXiv:1703.03400. Appendix C.1, Table 2 (K=5): MAML 0.67 / "
              "0.38 / 0.35 after 1 / 5 / 10 steps; pretrained 2.41 / 2.23 / 2.19.",
    "Li17": "Li, Zhou, Chen, Li. Meta-SGD: Learning to Learn Quickly for Few-Shot Learning. "
            "arXiv:1707.09835, Table 1 (one inner step, 95% CI; their tasks also vary the "
            "frequency). The 5-shot row was read from a secondary summary and the 10/20-shot "
            "rows as quoted by Lee & Choi 2018 (MT-nets); check against the PDF before citing.",
}
PUBLISHED = {
    ("maml", 5): "0.67 [Finn17]; 1.13 ± 0.18 [Li17]",
    ("metasgd", 5): "0.90 ± 0.16 [Li17]",
    ("maml", 10): "0.77 ± 0.11 [Li17]",
    ("metasgd", 10): "0.53 ± 0.09 [Li17]",
    ("maml", 20): "0.48 ± 0.08 [Li17]",
    ("metasgd", 20): "0.31 ± 0.05 [Li17]",
}
