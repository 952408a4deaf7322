#!/usr/bin/env bash
# lm_meta_reading: a pretrained decoder LM reads a chapter of people it has never seen in T LoRA
# steps; readers are compared on those people's questions after T steps, with the questions
# about people it knew allowed to drop by at most 5 points:
#   * adam: plain fine-tuning, its learning rate and replay share tuned on validation chapters;
#   * token_weights: meta-learned per-token loss weights (CaMeLS-style), backprop through T steps;
#   * init: a meta-learned LoRA initialisation (MAML over the adapters).
# The base model is pretrained first (experiments/configs/lm/knowledge.py, augmented, mix
# training) unless BASE names one (an HF directory such as a knowledge-storage run's
# WORKDIR/model, pretrained on the same people: knowledge.py at the same size, seed 0).
#
#   launch/reproduce/lm_meta_reading.sh small   # 300 known people, a 1M-parameter Llama, 3 seeds (this CPU)
#   launch/reproduce/lm_meta_reading.sh gpu     # 10k known people, a 30M-parameter Llama (one H200)
#   launch/reproduce/lm_meta_reading.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/lm_meta_reading_SIZE.{md,csv,png}; re-running skips finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core; SEEDS overrides the
# seeds; READERS ("token_weights init" by default) the meta-learned readers, each a reader of
# experiments/configs/lm/meta_reading.py with its options (e.g. "token_weights+lr,known=4").
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small|gpu) ;; *) echo "usage: $0 [tiny|small|gpu]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/lm_meta_reading}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
case "$SIZE" in tiny) DEFAULT_SEEDS="0" ;; *) DEFAULT_SEEDS="0 1 2" ;; esac
read -r -a SEED_LIST <<<"${SEEDS:-$DEFAULT_SEEDS}"
read -r -a READER_LIST <<<"${READERS:-token_weights init}"
CONFIG="$ROOT/experiments/configs/lm/meta_reading.py"

BASE=$(knowledge_base "$SIZE")

# run_dir READER SEED: the run's workdir (a reader's options joined by "_").
run_dir() { local r=${1//,/_}; echo "$WORKDIR_ROOT/${r//=/}_s$2_$SIZE"; }

# one_run "READER SEED": the tuned baseline (reading_baseline.py) or a meta-trained reader.
one_run() {
  read -r reader seed <<<"$1"
  local dir
  dir=$(run_dir "$reader" "$seed")
  local common=(--config="$CONFIG:$SIZE,$reader" --config.seed="$seed"
                --config.model.hf_dir="$BASE" --config.task.tokenizer="$BASE")
  if [ "$reader" = adam ]; then
    if [ -f "$dir/baseline.json" ]; then echo "done before: adam seed $seed"; return; fi
    local grid=()  # tiny: a 2 x 2 grid (the binary's default: 7 learning rates x 3 shares)
    if [ "$SIZE" = tiny ]; then grid=(--lrs=1e-3,1e-2 --shares=0,0.5); fi
    binary_in reading_baseline "$dir" "adam (tuned) seed $seed" "${common[@]}" "${grid[@]}"
  else
    binary_in meta_train "$dir" "$reader seed $seed" "${common[@]}"
  fi
}
export -f one_run run_dir
export SIZE WORKDIR_ROOT CONFIG BASE

RUNS=() DIRS=()
for reader in adam "${READER_LIST[@]}"; do
  for seed in "${SEED_LIST[@]}"; do
    RUNS+=("$reader $seed")
    DIRS+=("$(run_dir "$reader" "$seed")")
  done
done
run_parallel one_run "${RUNS[@]}"
"$PYTHON" "$ROOT/experiments/meta_reading_report.py" --workdirs="$(IFS=,; echo "${DIRS[*]}")" \
  --out="$RESULTS_DIR/lm_meta_reading_$SIZE" \
  --command="launch/reproduce/lm_meta_reading.sh $SIZE"
