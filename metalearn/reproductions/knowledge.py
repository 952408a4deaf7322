"""Tables and curves of the knowledge-storage reproduction (``launch/reproduce/
lm_knowledge_storage.sh``): exact-answer accuracy on the questions of people whose questions
were never trained on, by protocol (mix training; pretraining then fine-tuning) and writing
(plain; augmented), per attribute, mean over seeds with 95% intervals.

A run is an ``experiments/lm_pretrain.py`` workdir of the ``knowledge`` corpus
(``experiments/configs/lm/knowledge.py``): its ``config.json``, ``summary.json`` and
``metrics.jsonl`` (the curves). A fine-tuning run (``parts='qa'``) names its pretrained model
in ``init_from``; the pair is one run of the second protocol.
"""

import collections
import json
import pathlib

import ml_collections
import numpy as np

from metalearn import plots
from metalearn import reporting
from metalearn.lm import biography_book as bb
from metalearn.lm import pretrain
from metalearn.reproductions.progress import mean_ci

PROTOCOLS = {"bios+qa": "mix training (biographies + half the QA)",
             "qa": "pretrain on biographies, then fine-tune on half the QA"}


def writing_of(corpus: dict) -> str:
  if corpus["multiplicity"] == 1 and not corpus["permute"] and not corpus["fullname"]:
    return "plain"
  if corpus["multiplicity"] > 1 and corpus["permute"] and corpus["fullname"]:
    return "augmented"
  return (f"multi{corpus['multiplicity']}" + ("+permute" if corpus["permute"] else "")
          + ("+fullname" if corpus["fullname"] else ""))


def load_run(workdir: pathlib.Path) -> dict:
  """A finished run's condition, final accuracies and curve (``FileNotFoundError`` naming the
  missing file if it did not finish)."""
  config = json.loads((workdir / "config.json").read_text())
  summary = json.loads((workdir / "summary.json").read_text())
  corpus = config["corpus"]
  if corpus["name"] != "knowledge" or corpus["parts"] not in PROTOCOLS:
    raise ValueError(f"{workdir}: not a knowledge run of a protocol's last stage "
                     f"(corpus {corpus['name']!r}, parts {corpus['parts']!r})")
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  curve = [(r["step"], r["qa_test_accuracy"]) for r in rows if "qa_test_accuracy" in r]
  train_curve = [(r["step"], r["qa_train_accuracy"]) for r in rows if "qa_train_accuracy" in r]
  return {"protocol": corpus["parts"], "writing": writing_of(corpus), "seed": config["seed"],
          "summary": summary, "curve": np.asarray(curve, float),
          "train_curve": np.asarray(train_curve, float), "workdir": str(workdir),
          "seconds": summary.get("train_seconds"), "devices": summary.get("devices"),
          "config": config}


def majority_baseline(config: dict) -> dict[str, float]:
  """Accuracy, on the test questions a run evaluates, of always giving each attribute's most
  frequent answer among the trained questions: what knowing nobody scores."""
  c = pretrain.validate(ml_collections.ConfigDict(config))
  trained, test, _ = pretrain.knowledge_split(c)
  test = test[:c.corpus.qa_eval_people * len(bb.ATTRIBUTES)]
  out = {}
  for a in bb.ATTRIBUTES:
    top = collections.Counter(q.answer for q in trained if q.attribute == a).most_common(1)
    asked = [q for q in test if q.attribute == a]
    out[f"qa_test/{a}"] = float(np.mean([q.answer == top[0][0] for q in asked]))
  out["qa_test_accuracy"] = float(np.mean([out[f"qa_test/{a}"] for a in bb.ATTRIBUTES]))
  return out


def summarise(runs: list[dict]) -> list[dict]:
  """One row per (protocol, writing): seeds, and mean / 95% half-width of the test and train
  halves' accuracy overall and per attribute."""
  rows = []
  keys = ["qa_test_accuracy", "qa_train_accuracy"] + [f"qa_test/{a}" for a in bb.ATTRIBUTES]
  for protocol in PROTOCOLS:
    for writing in dict.fromkeys(r["writing"] for r in runs if r["protocol"] == protocol):
      mine = [r for r in runs if r["protocol"] == protocol and r["writing"] == writing]
      row = {"protocol": protocol, "writing": writing, "seeds": len(mine)}
      for k in keys:
        row[k], row[f"{k}_ci95"] = mean_ci([r["summary"][k] for r in mine])
      rows.append(row)
  return rows


def _plot(runs: list[dict], path: pathlib.Path) -> None:
  plt = plots.pyplot()
  protocols = [p for p in PROTOCOLS if any(r["protocol"] == p for r in runs)]
  fig, axes = plt.subplots(len(protocols), 1, figsize=(9, 3.6 * len(protocols)), squeeze=False)
  for ax, protocol in zip(axes[:, 0], protocols):
    mine = [r for r in runs if r["protocol"] == protocol]
    for i, writing in enumerate(dict.fromkeys(r["writing"] for r in mine)):
      curves = [r["curve"] for r in mine if r["writing"] == writing]
      steps = curves[0][:, 0]
      values = np.stack([c[:, 1] for c in curves if len(c) == len(steps)])
      mean = 100 * values.mean(0)
      ax.plot(steps, mean, marker="o", color=f"C{i}",
              label=f"{writing}: untrained people ({len(values)} seeds)")
      trained = [r["train_curve"] for r in mine if r["writing"] == writing]
      trained = np.stack([c[:, 1] for c in trained if len(c) == len(steps)])
      ax.plot(steps, 100 * trained.mean(0), ls="--", color=f"C{i}",
              label=f"{writing}: people whose questions were trained")
      if len(values) > 1:
        from metalearn import evaluators  # pylint: disable=g-import-not-at-top
        half = 100 * evaluators.mean_ci95(values)[1]
        ax.fill_between(steps, mean - half, mean + half, color=f"C{i}", alpha=0.2)
    chance = 100 * majority_baseline(mine[0]["config"])["qa_test_accuracy"]
    ax.axhline(chance, color="gray", ls=":", label="majority answer per attribute")
    ax.set(xlabel="optimizer steps" + (" of fine-tuning" if protocol == "qa" else ""),
           ylabel="exact answers (%)", ylim=(0, 100), title=PROTOCOLS[protocol])
    ax.legend(title="biographies", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.suptitle("knowledge extraction: mean over seeds, 95% interval shaded")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write(runs: list[dict], out: pathlib.Path, command: str) -> list[dict]:
  """Writes OUT.md / .csv / .png; returns the rows."""
  rows = summarise(runs)
  reporting.write_rows_csv(rows, out.with_suffix(".csv"))
  _plot(runs, out.with_suffix(".png"))
  pct = lambda v, ci: f"{100 * v:.1f}" + ("" if ci != ci else f" ± {100 * ci:.1f}")
  c = runs[0]["config"]
  lines = [
      "# Knowledge storage and extraction on the biography textbook", "",
      f"{c['corpus']['num_people']} people, six attributes each; the questions of "
      f"{100 * c['corpus']['qa_fraction']:.0f}% of them are trained on, the others' are the "
      "test. Exact answers (greedy decoding reproduces the whole answer) in %, mean over seeds "
      "± 95% interval (Student t); `plain`: one biography per person, full name in its first "
      "sentence only; `augmented`: five biographies per person, fresh templates, shuffled "
      "sentences, the full name in every sentence.", ""]
  for protocol, title in PROTOCOLS.items():
    mine = [r for r in rows if r["protocol"] == protocol]
    if not mine:
      continue
    lines += [f"## {title}", "",
              "| biographies | seeds | test people | trained people | "
              + " | ".join(bb.ATTRIBUTES) + " |", "|---" * (4 + len(bb.ATTRIBUTES)) + "|"]
    for r in mine:
      lines.append(f"| {r['writing']} | {r['seeds']} | "
                   f"{pct(r['qa_test_accuracy'], r['qa_test_accuracy_ci95'])} | "
                   f"{pct(r['qa_train_accuracy'], r['qa_train_accuracy_ci95'])} | "
                   + " | ".join(pct(r[f"qa_test/{a}"], r[f"qa_test/{a}_ci95"])
                                for a in bb.ATTRIBUTES) + " |")
    chance = majority_baseline(next(x for x in runs if x["protocol"] == protocol)["config"])
    lines.append("| majority answer per attribute (seed 0's people) | | "
                 f"{pct(chance['qa_test_accuracy'], float('nan'))} | | "
                 + " | ".join(pct(chance[f"qa_test/{a}"], float("nan"))
                              for a in bb.ATTRIBUTES) + " |")
    lines.append("")
  model = runs[0]["summary"]
  lines.append(f"Model: {model['arch']}, {model['params'] / 1e6:.2f}M parameters, on "
               f"{model['devices']}. Training seconds per run (the fine-tuning protocol: its "
               "fine-tuning stage):")
  lines.append("")
  for protocol in PROTOCOLS:
    seconds = [r["seconds"] for r in runs if r["protocol"] == protocol and r["seconds"]]
    if seconds:
      lines.append(f"* {PROTOCOLS[protocol]}: {min(seconds):.0f}-{max(seconds):.0f} s")
  lines += ["", f"Curves: `{out.with_suffix('.png').name}`. Command: `{command}`.", "",
            "The paper (Allen-Zhu and Li 2023, Physics of Language Models 3.1; its abstract): "
            "knowledge that is not augmented in pretraining \"may be memorized but not "
            "extractable, leading to 0% accuracy, regardless of subsequent instruction "
            "fine-tuning\"; augmented (paraphrased, shuffled, full names) it is extracted "
            "reliably. Its per-condition figures (bioS, 100k people, GPT-2-sized models) "
            "could not be checked offline here and are not quoted."]
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")
  return rows
