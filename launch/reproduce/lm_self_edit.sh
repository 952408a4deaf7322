#!/usr/bin/env bash
# lm_self_edit: self-written study notes rewarded by what they teach (SEAL-style, ReST-EM). A
# pretrained decoder LM continues a biography of a person it never saw with sentences about
# them (a note: several such sentences, each opened by the name); a fresh LoRA reader reads
# the note alone and is asked the person's questions; the note's reward is the drop of their
# answer loss; the writer is fine-tuned on its best notes through the
# Tinker-shaped client. Compares, on test people, reading the biography, another biography,
# the facts as question-answer pairs, and the writer's notes before and after. The base model
# is pretrained first (as lm_meta_reading.sh does) unless BASE names one.
#
#   launch/reproduce/lm_self_edit.sh small   # 10 iterations x 8 people x 4 notes x 6 sentences, 3 seeds
#   launch/reproduce/lm_self_edit.sh gpu     # 20 iterations x 32 people x 8 notes x 6 sentences (one H200)
#   launch/reproduce/lm_self_edit.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/lm_self_edit_SIZE.{md,csv,png,json}; re-running skips finished
# iterations. SEEDS overrides the seed count; TUNED (a lm_meta_reading.sh baseline.json) sets
# the reader's learning rate to the tuned baseline's; WARM_START=N warm-starts the writer for N
# steps restating training people's other biographies (into lm_self_edit_SIZE_warm).
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small|gpu) ;; *) echo "usage: $0 [tiny|small|gpu]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/lm_self_edit}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
BASE=$(knowledge_base "$SIZE")
case "$SIZE" in
  tiny) LOOP=(--iterations=2 --people=2 --samples=2 --sentences=2 --max_tokens=8 --seeds="${SEEDS:-2}") ;;
  small) LOOP=(--iterations=10 --people=8 --samples=4 --sentences=6 --max_tokens=16 --seeds="${SEEDS:-3}") ;;
  gpu) LOOP=(--iterations=20 --people=32 --samples=8 --sentences=6 --max_tokens=24 --seeds="${SEEDS:-3}") ;;
esac
READER=()
if [ -n "${TUNED:-}" ]; then
  read -r -a READER <<<"$(tuned_flags "$TUNED")"
fi
NAME=$SIZE
if [ "${WARM_START:-0}" != 0 ]; then
  LOOP+=(--warm_start="$WARM_START"); NAME=${SIZE}_warm
fi
mkdir -p "$RESULTS_DIR"
"$PYTHON" "$ROOT/experiments/self_edit.py" \
  --config="$ROOT/experiments/configs/lm/meta_reading.py:$SIZE,adam" \
  --config.model.hf_dir="$BASE" --config.task.tokenizer="$BASE" "${READER[@]}" \
  "${LOOP[@]}" --workdir="$WORKDIR_ROOT/$NAME" --out="$RESULTS_DIR/lm_self_edit_$NAME"
