"""A trained workdir's export/: written by meta_train.py and experiments/export.py (from any
checkpoint), loaded in a fresh process outside the repository with one call per kind, and
giving what the learner itself gives in-process."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn import evaluators, experiment, exported
from metalearn.tasks import Episode
from metalearn.unroll import unroll
from tests.conftest import ROOT, meta_train_tiny


def _fresh(code: str, cwd) -> subprocess.CompletedProcess:
  """``code`` in a fresh Python process started outside the repository."""
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _in_process(workdir):
  config = config_lib.validate(config_lib.workdir_config(workdir))
  exp = experiment.build(config)
  theta, step = evaluators.load_theta(config, workdir, exp)
  return config, exp, theta, step


def test_maml_adapts_and_predicts_from_its_export_as_the_learner_does(tmp_path):
  run = tmp_path / "run"
  result = meta_train_tiny("maml_sinusoid.py", "maml,tiny", run)
  assert f"export: {run / 'export'}" in result.stdout
  x = np.linspace(-5, 5, 10, dtype=np.float32)[:, None]
  np.save(tmp_path / "x.npy", x)
  _fresh(f"""
import numpy as np, metalearn
learner = metalearn.load_learner({str(run / 'export')!r})
x = np.load('x.npy'); y = 2 * np.sin(x + 1)
state = learner.adapt(x, y)
np.save('p.npy', np.asarray(learner.predict(state, x)))
np.save('p0.npy', np.asarray(learner.predict(learner.adapt(x, y, num_steps=0), x)))
""", tmp_path)
  config, exp, theta, _ = _in_process(run)
  y = 2 * np.sin(x + 1)
  episode = Episode(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x), jnp.asarray(y), {})
  state, _ = unroll(exp.learner, theta, exp.learner.init_state(theta, episode), episode,
                    config.learner.num_inner_steps)
  want = exp.learner.predict(theta, state, jnp.asarray(x))
  np.testing.assert_allclose(np.load(tmp_path / "p.npy"), want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.load(tmp_path / "p0.npy"),
                             exp.learner.predict(theta, theta["params"], jnp.asarray(x)),
                             rtol=1e-5, atol=1e-6)
  readme = (run / "export" / "README.md").read_text()
  assert "metalearn.load_learner" in readme and "`support_x` and `query_x` are `[N, 1]`" in readme
  with pytest.raises(ValueError, match=r"support_x has shape \(10, 1, 1\); this learner takes "
                     r"\[N, 1\]"):
    exported.load_learner(run / "export").adapt(x[:, None], y)

  # on demand, from an older checkpoint
  steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
  again = subprocess.run([sys.executable, str(ROOT / "experiments" / "export.py"),
                          f"--workdir={run}", f"--step={steps[0]}"], capture_output=True,
                         text=True, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
  assert again.returncode == 0, again.stderr[-3000:]
  meta = json.loads((run / "export" / "export.json").read_text())
  assert meta["checkpoint_step"] == steps[0] and meta["kind"] == "adapts"
  with pytest.raises(FileNotFoundError, match="no checkpoint of step 7"):
    exported.export(config, run, step=7)
  with pytest.raises(TypeError, match="not a learned optimizer"):
    exported.load_optimizer(run / "export", num_steps=10)
  with pytest.raises(FileNotFoundError, match="is not an export"):
    exported.load_learner(run)


def test_a_learned_optimizer_loads_as_optax_and_an_in_context_model_predicts(tmp_path):
  lopt, icl = tmp_path / "lopt", tmp_path / "icl"
  meta_train_tiny("learned_optimizer.py", "mlp_lopt,tiny", lopt)
  meta_train_tiny("in_context.py", "linear_regression,tiny", icl)
  x = np.random.RandomState(0).randn(7, 3).astype(np.float32)
  y = x @ np.array([1.0, -2.0, 0.5], np.float32)
  np.save(tmp_path / "x.npy", x)
  np.save(tmp_path / "y.npy", y)
  _fresh(f"""
import numpy as np, jax.numpy as jnp, optax, metalearn
tx = metalearn.load_optimizer({str(lopt / 'export')!r}, num_steps=50)
params = {{"w": jnp.ones(3)}}
state = tx.init(params)
updates, state = tx.update({{"w": jnp.array([1.0, -1.0, 0.5])}}, state, params)
np.save('u.npy', np.asarray(updates["w"]))
learner = metalearn.load_learner({str(icl / 'export')!r})
np.save('icl.npy', np.asarray(learner.predict_prompt(np.load('x.npy'), np.load('y.npy'))))
""", tmp_path)
  _, exp, theta, _ = _in_process(lopt)
  rule = exp.learner.rule
  params = {"w": jnp.ones(3)}
  want, _ = rule.update(theta, rule.init_state(theta, params, 50),
                        {"w": jnp.array([1.0, -1.0, 0.5])}, params, None)
  np.testing.assert_allclose(np.load(tmp_path / "u.npy"), want["w"], rtol=1e-5, atol=1e-9)
  assert float(np.abs(np.load(tmp_path / "u.npy")).max()) > 0
  _, exp, theta, _ = _in_process(icl)
  np.testing.assert_allclose(np.load(tmp_path / "icl.npy"),
                             exp.learner.predict_prompt(theta, jnp.asarray(x), jnp.asarray(y)),
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(TypeError, match="'in_context' learners"):
    exported.load_learner(lopt / "export").predict_prompt(x, y)
  with pytest.raises(TypeError, match="for 'adapts' learners; this export is 'in_context'"):
    exported.load_learner(icl / "export").adapt(x, y)


def test_a_textbook_reader_reads_a_books_exercises_from_its_export(tmp_path):
  run = tmp_path / "textbook"
  meta_train_tiny("textbook.py", "regression,tiny", run)
  config, exp, theta, _ = _in_process(run)
  episode = exp.family.sample(jax.random.key(3))  # a book: [T, B, 4] exercises
  np.save(tmp_path / "sx.npy", episode.support_x)
  np.save(tmp_path / "sy.npy", episode.support_y)
  np.save(tmp_path / "qx.npy", episode.query_x[0])
  _fresh(f"""
import numpy as np, metalearn
learner = metalearn.load_learner({str(run / 'export')!r})
state = learner.adapt(np.load('sx.npy'), np.load('sy.npy'))
np.save('p.npy', np.asarray(learner.predict(state, np.load('qx.npy'))))
""", tmp_path)
  state, _ = unroll(exp.learner, theta, exp.learner.init_state(theta, episode), episode,
                    exp.learner.num_inner_steps)
  np.testing.assert_allclose(np.load(tmp_path / "p.npy"),
                             exp.learner.predict(theta, state, episode.query_x[0]),
                             rtol=1e-5, atol=1e-6)
  t, b, d = episode.support_x.shape
  assert f"`support_x` is `[T, B, {d}]`" in (run / "export" / "README.md").read_text()
  with pytest.raises(ValueError, match=rf"takes \[T, B, {d}\]"):  # one exercise is not a book
    exported.load_learner(run / "export").adapt(episode.support_x[0], episode.support_y[0])


def check_protonet_export(run, tmp_path) -> None:
  """A finished ProtoNet run's export (``run/export``), loaded in a fresh process outside the
  repository, without the dataset it was trained on: its class scores for a support set of
  random images equal the learner's own (tests/launch/test_reproduce.py::test_omniglot_tiny
  calls it on the launch script's ProtoNet run)."""
  config, exp, theta, _ = _in_process(run)
  rng = np.random.RandomState(0)
  ways = config.task.num_ways
  support_x = rng.rand(2 * ways, *exp.family.input_shape).astype(np.float32)
  support_y = np.repeat(np.arange(ways), 2).astype(np.int32)
  query_x = rng.rand(7, *exp.family.input_shape).astype(np.float32)
  for name, a in (("sx", support_x), ("sy", support_y), ("qx", query_x)):
    np.save(tmp_path / f"{name}.npy", a)
  _fresh(f"""
import numpy as np, metalearn
learner = metalearn.load_learner({str(run / 'export')!r})
state = learner.adapt(np.load('sx.npy'), np.load('sy.npy'))
np.save('logits.npy', np.asarray(learner.predict(state, np.load('qx.npy'))))
""", tmp_path)
  episode = Episode(jnp.asarray(support_x), jnp.asarray(support_y), jnp.asarray(query_x),
                    jnp.zeros(7, jnp.int32), {})
  want = exp.learner.predict(theta, exp.learner.init_state(theta, episode),
                             jnp.asarray(query_x))
  got = np.load(tmp_path / "logits.npy")
  assert got.shape == (7, ways)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
