"""metalearn: meta-training learners that learn, in JAX.

The public surface, one module per idea:

* :mod:`metalearn.tasks`: task families (``SinusoidFamily``) and ``Episode``.
* :mod:`metalearn.learners`: the ``Learner`` contract and gradient-based learners.
* :func:`metalearn.unroll.unroll`: a learner's learning curve from one ``lax.scan``.
* :mod:`metalearn.objectives`: learning curve -> meta-objective (final, mean, progress).
* :mod:`metalearn.estimators`: meta-gradient estimators (``init`` / ``estimate`` pairs).
* :mod:`metalearn.config`, :mod:`metalearn.train`, :mod:`metalearn.evaluators`: configs, the
  meta-trainer and evaluation used by ``experiments/*.py``.

A trained workdir's ``export/`` (:mod:`metalearn.exported`) loads with
``metalearn.load_learner(path)`` (``adapt`` / ``predict``, ``predict_prompt``) or
``metalearn.load_optimizer(path, num_steps)`` (an optax transformation).

Example::

  from metalearn import config, evaluation, train
  c = config.default_config()          # MAML, 10-shot sinusoids, paper settings
  c.num_steps = 2000
  train.train(c, "/tmp/maml")
  evaluation.evaluate_and_report(c, "/tmp/maml")
"""

__version__ = "0.1.0"


def __getattr__(name):
  # A trained workdir's export (metalearn.exported), imported on first use so that
  # ``import metalearn`` stays light for the binaries' config checks.
  if name in ("load_learner", "load_optimizer"):
    from metalearn import exported  # pylint: disable=g-import-not-at-top
    return getattr(exported, name)
  raise AttributeError(f"module 'metalearn' has no attribute {name!r}")
