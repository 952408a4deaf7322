#!/usr/bin/env bash
# lm_python_tutorial: the Python tutorial as a real textbook. A base LM that knows some Python
# (pretrained on this interpreter's standard library: experiments/configs/lm/pretrain.py's
# python corpus) reads the tutorial's chapters in order with LoRA; its questions (the >>>
# examples, graded by executing them, and cloze over inline literals) give the forgetting matrix
# over the chapters. The reader's per-token loss weights are meta-learned on single chapters
# (experiments/configs/lm/python_tutorial.py); the table compares it with the same reader
# untrained (plain Adam fine-tuning, the evaluator's random_init baseline).
#
#   launch/reproduce/lm_python_tutorial.sh small   # a 2.8M-parameter base, 16 chapters (this CPU)
#   launch/reproduce/lm_python_tutorial.sh tiny    # seconds: the tests' size (two chapters)
#
# Needs the tutorial's sources: $METALEARN_PYTHON_TUTORIAL_DIR, else ../shared/data/python_tutorial
# beside the repository. BASE names an HF model directory to read with instead of pretraining
# one (at tiny the tests pass a tiny base). Writes $RESULTS_DIR/lm_python_tutorial_SIZE.{md,png};
# re-running skips finished steps.
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small) ;; *) echo "usage: $0 [tiny|small]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/lm_python_tutorial}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=1
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
export METALEARN_PYTHON_TUTORIAL_DIR=${METALEARN_PYTHON_TUTORIAL_DIR:-$ROOT/../shared/data/python_tutorial}
if [ ! -d "$METALEARN_PYTHON_TUTORIAL_DIR" ]; then
  echo "no Python tutorial sources at $METALEARN_PYTHON_TUTORIAL_DIR: set METALEARN_PYTHON_TUTORIAL_DIR" >&2
  exit 2
fi

if [ -n "${BASE:-}" ]; then
  [ -f "$BASE/config.json" ] || { echo "BASE=$BASE holds no config.json (an HF model directory)" >&2; exit 2; }
else
  BASE_RUN="$WORKDIR_ROOT/base_$SIZE"
  if [ ! -f "$BASE_RUN/summary.json" ]; then
    SLOT=0 binary_in lm_pretrain "$BASE_RUN" "base model (the standard library's Python)" \
      --config="$ROOT/experiments/configs/lm/pretrain.py:$SIZE,python"
  fi
  BASE=$BASE_RUN/model
fi

READER="$WORKDIR_ROOT/reader_$SIZE"
if [ ! -f "$READER/eval.md" ]; then
  SLOT=0 binary_in meta_train "$READER" "token-weight reader" \
    --config="$ROOT/experiments/configs/lm/python_tutorial.py:$SIZE" \
    --config.model.hf_dir="$BASE" --config.task.tokenizer="$BASE"
fi

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/lm_python_tutorial_$SIZE"
cp "$READER/textbook_R.png" "$OUT.png"
"$PYTHON" - "$READER" "$BASE" "$OUT.md" "$SIZE" <<'PY'
import json, pathlib, sys
reader, base, out = map(pathlib.Path, sys.argv[1:4])
size = sys.argv[4]
summary = base.parent / "summary.json"
trained = json.loads(summary.read_text()) if summary.exists() else None
if trained:
  corpus = json.loads((base.parent / "config.json").read_text())["corpus"]
  corpus = (f"the files {', '.join(corpus['patterns'])} of {corpus['directory']}"
            if corpus["name"] == "files" else f"the {corpus['name']} corpus")
config = json.loads((reader / "config.json").read_text())
lines = [f"# The Python tutorial read in order ({size})", "",
         "A base LM reads the tutorial's chapters in order with LoRA "
         f"({config['learner']['num_inner_steps']}-step chapters of "
         f"{config['task']['rows_per_step']} rows of {config['task']['max_len']} tokens, rank "
         f"{config['learner']['rank']}, Adam at {config['learner']['init_lr']}); after each "
         "chapter it answers every chapter's questions (the tutorial's >>> examples, kept when "
         "executing them prints what the tutorial shows, and cloze over inline literals). "
         "`meta`: per-token loss weights meta-learned on single chapters "
         f"({config['num_steps']} meta-steps, {config['estimator']['name']}); `random_init`: "
         "the same reader untrained (plain fine-tuning).", ""]
if trained:
  lines += [f"Base: {trained['params'] / 1e6:.2f}M-parameter {trained['arch']}, "
            f"{trained['steps']} steps on {trained['train_tokens']:,} tokens of {corpus}; "
            f"held-out loss {trained['eval_loss']:.3f}, "
            f"next-token accuracy {trained['eval_accuracy']:.3f}; greedy sample after "
            f"{trained['sample_prompt']!r}: {trained['sample']!r}.", ""]
from metalearn.evaluators.base import hardware
walls = {name: run / "wall_seconds.txt" for name, run in (("base", base.parent),
                                                          ("reader", reader))}
walls = ", ".join(f"{name} {w.read_text().strip()} s" for name, w in walls.items() if w.exists())
lines += [(reader / "eval.md").read_text().strip(), "",
          f"Hardware: {hardware()}; wall time: {walls or 'not recorded'}.", "",
          f"Forgetting matrices: `{pathlib.Path(out).with_suffix('.png').name}`.", "",
          f"Command: `launch/reproduce/lm_python_tutorial.sh {size}`"]
pathlib.Path(out).write_text("\n".join(lines) + "\n")
print(pathlib.Path(out).read_text())
PY
