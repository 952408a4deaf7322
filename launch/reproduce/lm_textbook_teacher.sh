#!/usr/bin/env bash
# lm_textbook_teacher: a learning-progress teacher over the chapters of a book at LM scale. A
# pretrained decoder LM reads chapters of new people under a fixed budget of LoRA steps; before
# each round a teacher (uniform, fixed order, TSCL, Exp3.S) picks the chapter and observes its
# progress. Whole-book accuracy, the known people's, and forgetting, over seeds. The base model
# is pretrained first (as lm_meta_reading.sh does) unless BASE names one.
#
#   launch/reproduce/lm_textbook_teacher.sh small   # 10 chapters, 40 rounds x 5 steps, 8 seeds (this CPU)
#   launch/reproduce/lm_textbook_teacher.sh gpu     # 20 chapters of 16 people (one H200)
#   launch/reproduce/lm_textbook_teacher.sh tiny    # seconds: the tests' size
#
# Every new person has a mentor from an earlier chapter (task.prerequisites: the mentor's
# birth city is asked about, and only the mentor's chapter tells it), so the order chapters are
# read in matters; PREREQUISITES=0 leaves mentors out.
#
# Writes $RESULTS_DIR/lm_textbook_teacher_SIZE.{md,csv,png,json} (..._SIZE_no_prerequisites.*
# with PREREQUISITES=0). TEACHERS overrides the teachers (comma-separated), SEEDS the seed
# count.
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small|gpu) ;; *) echo "usage: $0 [tiny|small|gpu]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/lm_textbook_teacher}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
BASE=$(knowledge_base "$SIZE")
case "$SIZE" in
  tiny) BUDGET=(--rounds=6 --steps_per_round=2 --seeds="${SEEDS:-2}") ;;
  *) BUDGET=(--rounds=40 --steps_per_round=5 --seeds="${SEEDS:-8}") ;;
esac
# the tuned baseline's learning rate and replay share (lm_meta_reading.sh) are the reader's
# when TUNED names its baseline.json
READER=()
if [ -n "${TUNED:-}" ]; then
  read -r -a READER <<<"$(tuned_flags "$TUNED" share)"
fi
ARGS=$SIZE,adam OUT=lm_textbook_teacher_$SIZE
case "${PREREQUISITES:-1}" in
  1) ARGS+=,prerequisites ;;
  0) OUT+=_no_prerequisites ;;
  *) echo "PREREQUISITES: 1 (default) or 0" >&2; exit 2 ;;
esac
mkdir -p "$RESULTS_DIR"
"$PYTHON" "$ROOT/experiments/textbook_teacher.py" \
  --config="$ROOT/experiments/configs/lm/meta_reading.py:$ARGS" \
  --config.model.hf_dir="$BASE" --config.task.tokenizer="$BASE" "${READER[@]}" \
  --teachers="${TEACHERS:-uniform,fixed,tscl,exp3s}" "${BUDGET[@]}" \
  --out="$RESULTS_DIR/$OUT"
