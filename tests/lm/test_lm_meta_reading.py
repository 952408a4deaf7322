"""Meta-learned reading's bookkeeping (metalearn.reproductions.meta_reading): scores of curves,
the forgetting limit and the bar checked by value, and the reproduction script at its tiny
size, end to end."""

import csv
import json
import os
import subprocess

import jax
import numpy as np
import pytest

from metalearn import config as config_lib
from metalearn.reproductions import meta_reading
from tests.conftest import ROOT

CONFIG = ROOT / "experiments" / "configs" / "lm" / "meta_reading.py"


def test_score_reads_the_curves_ends_and_area():
  curves = {"answer_accuracy": np.array([[0.0, 0.5, 1.0], [0.0, 0.0, 0.5]]),
            "known_accuracy": np.array([[0.8, 0.7, 0.6], [0.6, 0.6, 0.6]])}
  s = meta_reading.score(curves)
  assert s["new_accuracy"] == pytest.approx(0.75)
  assert s["new_auc"] == pytest.approx((0.5 + 1.0 + 0.0 + 0.5) / 4)
  assert s["known_before"] == pytest.approx(0.7) and s["known_after"] == pytest.approx(0.6)
  assert s["known_drop"] == pytest.approx(0.1)
  # a learned initialisation's start is not the base: the drop is from the base's accuracy
  s = meta_reading.score(curves, known_before=0.9)
  assert s["known_before"] == 0.9 and s["known_drop"] == pytest.approx(0.3)


def test_a_drop_of_exactly_the_limit_is_within_it():
  # 165 -> 153 of 240 probe answers: 5 points, a few 1e-9 over 0.05 in float32
  drop = float(np.float32(165 / 240) - np.float32(153 / 240))
  assert drop > meta_reading.LIMIT and meta_reading.within_limit(drop)
  assert not meta_reading.within_limit(0.0501)
  rows, _ = meta_reading.summarise([_run("adam (tuned)", 0, 0.2, drop)])
  assert rows[0]["within_limit"] is True


def test_measured_cells_are_reused_only_under_the_same_config(tmp_path):
  path = tmp_path / meta_reading.CELLS
  cell = lambda lr, share, key: json.dumps({"lr": lr, "replay_share": share,
                                            "new_accuracy": lr, "config_key": key})
  path.write_text("\n".join([cell(1e-3, 0.0, "a"), cell(1e-2, 0.5, "a"), cell(1e-3, 0.0, "b"),
                             '{"lr": 0.1, "replay_sh']))  # a kill while appending
  cells = meta_reading.measured_cells(path, "a")
  assert sorted(cells) == [(1e-3, 0.0), (1e-2, 0.5)] and cells[(1e-2, 0.5)]["new_accuracy"] == 1e-2
  assert "config_key" not in cells[(1e-3, 0.0)]
  assert meta_reading.measured_cells(path, "c") == {}
  assert meta_reading.measured_cells(tmp_path / "none.jsonl", "a") == {}
  path.write_text("\n".join(["{not json", cell(1e-3, 0.0, "a")]))
  with pytest.raises(ValueError, match="line 1: not JSON"):
    meta_reading.measured_cells(path, "a")


def _run(reader, seed, new, drop):
  return {"reader": reader, "seed": seed,
          "score": {"new_accuracy": new, "new_auc": new / 2, "known_before": 0.7,
                    "known_after": 0.7 - drop, "known_drop": drop}}


def test_the_bar_takes_the_best_reader_within_the_limit_and_needs_intervals_apart():
  runs = ([_run("adam (tuned)", s, v, 0.02) for s, v in enumerate((0.20, 0.22, 0.21))]
          + [_run("token_weights (backprop)", s, v, 0.03)
             for s, v in enumerate((0.40, 0.42, 0.41))]
          + [_run("init (backprop)", s, v, 0.20) for s, v in enumerate((0.9, 0.9, 0.9))])
  rows, bar = meta_reading.summarise(runs)
  by = {r["reader"]: r for r in rows}
  assert by["init (backprop)"]["within_limit"] is False  # forgets 20 points: out
  assert by["adam (tuned)"]["new_accuracy"] == pytest.approx(0.21)
  assert bar["best"] == "token_weights (backprop)" and bar["margin"] == pytest.approx(0.20)
  assert bar["met"]
  # 15 points apart on average, but the intervals overlap: not met
  noisy = ([_run("adam (tuned)", s, v, 0.0) for s, v in enumerate((0.0, 0.4, 0.2))]
           + [_run("init (backprop)", s, v, 0.0) for s, v in enumerate((0.1, 0.7, 0.25))])
  _, bar = meta_reading.summarise(noisy)
  assert bar["margin"] == pytest.approx(0.15) and not bar["met"]


def test_the_scripts_base_is_pretrained_once_unless_base_names_one(tmp_path):
  # knowledge_base (launch/reproduce/common.sh) with a stand-in for python that records its
  # arguments and writes what lm_pretrain.py leaves: summary.json and model/config.json
  fake = tmp_path / "python"
  fake.write_text(f"""#!/usr/bin/env bash
echo "$@" >> {tmp_path / 'calls'}
for a in "$@"; do case $a in --workdir=*) w=${{a#--workdir=}} ;; esac; done
mkdir -p "$w/model" && echo {{}} > "$w/model/config.json" && echo {{}} > "$w/summary.json"
""")
  fake.chmod(0o755)
  env = {**os.environ, "ROOT": str(ROOT), "PYTHON": str(fake), "PIN": "0",
         "WORKDIR_ROOT": str(tmp_path / "runs")}
  twice = f'source "{ROOT}/launch/reproduce/common.sh"; knowledge_base tiny; knowledge_base tiny'
  out = subprocess.run(["bash", "-c", twice], env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  assert out.stdout.split() == [str(tmp_path / "runs" / "base_tiny" / "model")] * 2
  calls = (tmp_path / "calls").read_text().splitlines()
  assert len(calls) == 1 and calls[0].split()[0].endswith("experiments/lm_pretrain.py")
  assert "lm/knowledge.py:tiny,augmented,bios+qa" in calls[0]
  # BASE wins, and one that is not an HF model directory is refused
  given = tmp_path / "runs" / "base_tiny" / "model"
  out = subprocess.run(["bash", "-c", twice], env={**env, "BASE": str(given)},
                       capture_output=True, text=True)
  assert out.stdout.split() == [str(given)] * 2 and len(
      (tmp_path / "calls").read_text().splitlines()) == 1
  out = subprocess.run(["bash", "-c", twice], env={**env, "BASE": str(tmp_path)},
                       capture_output=True, text=True)
  assert out.returncode != 0 and "holds no config.json" in out.stderr


def test_the_probes_weight_is_a_config_argument_and_names_the_reader():
  module = config_lib.load_config_module(str(CONFIG))
  plain = module.get_config("tiny,token_weights+lr")
  heavy = module.get_config("tiny,token_weights+lr,known=4")
  assert plain.task.known_weight == 1.0 and heavy.task.known_weight == 4.0
  assert meta_reading.reader_of(plain.to_dict()) == "token_weights+lr (backprop)"
  assert meta_reading.reader_of(heavy.to_dict()) == "token_weights+lr (backprop, known ×4)"
  with pytest.raises(ValueError, match="known=W takes a number"):
    module.get_config("tiny,known=heavy")
  hinge = module.get_config("tiny,init,known=10,limit=0.21")
  assert hinge.task.known_weight == 10.0 and hinge.task.known_limit == 0.21
  assert meta_reading.reader_of(hinge.to_dict()) == "init (backprop, known ×10 above 0.21 nats)"
  with pytest.raises(ValueError, match="limit=NATS takes a number"):
    module.get_config("tiny,limit=low")
  kl = module.get_config("tiny,init,known=10,kl,limit=0.02")
  assert kl.task.known_kl and not hinge.task.known_kl
  assert meta_reading.reader_of(kl.to_dict()) == "init (backprop, known KL ×10 above 0.02 nats)"
  config_lib.validate(kl)


def test_the_readers_query_loss_is_the_familys_with_the_probes_weight():
  from metalearn import experiment  # pylint: disable=g-import-not-at-top
  from metalearn.tasks.biographies import token_loss  # pylint: disable=g-import-not-at-top
  module = config_lib.load_config_module(str(CONFIG))
  losses = {}
  for known in (1, 4):
    exp = experiment.build(config_lib.validate(
        module.get_config(f"tiny,token_weights+lr,known={known}")))
    episode = exp.family.sample(jax.random.key(0))
    theta = exp.learner.init(jax.random.key(1))
    state = exp.learner.init_state(theta, episode)
    logits = exp.learner.predict(theta, state, episode.query_x)
    losses[known] = float(exp.learner.query_loss(theta, state, episode))
    np.testing.assert_allclose(losses[known], exp.family.loss(logits, episode.query_y),
                               rtol=1e-6)
  assert losses[1] == pytest.approx(float(token_loss(logits, episode.query_y)), rel=1e-6)
  assert losses[4] > losses[1]  # the probe's tokens count four times


def test_reproduction_script_tiny(tmp_path, tiny_base):
  env = {**os.environ, "WORKDIR_ROOT": str(tmp_path / "runs"), "READERS": "init,known=2",
         "BASE": str(tiny_base),
         "RESULTS_DIR": str(tmp_path / "results"), "PARALLEL": "1", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(["bash", str(ROOT / "launch" / "reproduce" / "lm_meta_reading.sh"),
                           "tiny"], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  out = tmp_path / "results" / "lm_meta_reading_tiny"
  with open(out.with_suffix(".csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["reader"] for r in rows] == ["adam (tuned)", "init (backprop, known ×2)"]
  table = out.with_suffix(".md").read_text()
  assert "bar (>= 15 points" in table and "seed 0: lr " in table and "(of 4 cells" in table
  assert out.with_suffix(".png").stat().st_size > 10_000
  baseline = json.loads((tmp_path / "runs" / "adam_s0_tiny" / "baseline.json").read_text())
  assert len(baseline["grid"]) == 4  # the tiny grid: 2 learning rates x 2 shares
  cells = (tmp_path / "runs" / "adam_s0_tiny" / meta_reading.CELLS).read_text().splitlines()
  assert [json.loads(c)["new_accuracy"] for c in cells] == [
      g["new_accuracy"] for g in baseline["grid"]]
  assert baseline["chosen"]["lr"] in (1e-3, 1e-2)
  # the baseline and the reader read the same base model, BASE
  reader = json.loads((tmp_path / "runs" / "init_known2_s0_tiny" / "config.json").read_text())
  assert reader["model"]["hf_dir"] == baseline["config"]["model"]["hf_dir"] == str(tiny_base)
  # the init reader's probe is measured from the base model: the untrained init's step 0
  evaluated = json.loads((tmp_path / "runs" / "init_known2_s0_tiny" / "eval.json").read_text())
  base_known = evaluated["methods"]["initial"]["known_accuracy"][0]
  assert float(rows[1]["known_before"]) == pytest.approx(base_known)
  assert float(rows[1]["known_drop"]) == pytest.approx(
      base_known - evaluated["methods"]["meta"]["known_accuracy"][-1])
  # the meta-learned LoRA initialisation is exported in PEFT's format
  from metalearn import exported  # pylint: disable=g-import-not-at-top
  from metalearn.lm import lora as lora_lib  # pylint: disable=g-import-not-at-top
  export = tmp_path / "runs" / "init_known2_s0_tiny" / "export"
  loaded = exported.load_learner(export)
  peft, _ = lora_lib.load_peft(export / "peft", loaded.learner.model.config)
  for a, b in zip(jax.tree.leaves(peft), jax.tree.leaves(loaded.theta["init"])):
    np.testing.assert_array_equal(a, b)
  assert "peft" in json.loads((export / "export.json").read_text())["files"].values()
  # the same run read as books: the forgetting matrix, with the probe along the book
  base = reader["model"]["hf_dir"]
  result = subprocess.run(
      ["python", str(ROOT / "experiments" / "evaluate.py"),
       f"--workdir={tmp_path / 'runs' / 'init_known2_s0_tiny'}",
       f"--config={ROOT / 'experiments' / 'configs' / 'lm' / 'meta_reading.py'}:tiny,init,known=2,book",
       f"--config.model.hf_dir={base}", f"--config.task.tokenizer={base}"],
      capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  book = json.loads((tmp_path / "runs" / "init_known2_s0_tiny" / "eval.json").read_text())
  assert book["evaluator"] == "textbook" and book["mode"] == "lora"
  R = np.asarray(book["methods"]["meta"]["answer_accuracy"]["R"])
  assert R.shape == (2, 2) and ((0 <= R) & (R <= 1)).all()
  assert np.asarray(book["methods"]["meta"]["known_accuracy"]["R"]).shape == (2, 2)
  assert (tmp_path / "runs" / "init_known2_s0_tiny" / "textbook_R.png").exists()
