#!/usr/bin/env bash
# curriculum_icl: a learning-progress teacher (ALP-GMM, TSCL, ...) in place of Garg et al.'s
# hand-made curriculum for in-context linear regression: steps to reach (within 10% of) the
# error that training on the full task without a curriculum ends at; a random-difficulty
# teacher is the control.
#
#   launch/reproduce/curriculum_icl.sh small   # d = 5, 11 points, 6000 steps, 2 seeds x 5 methods (~30 min on a 2-core CPU)
#   launch/reproduce/curriculum_icl.sh full    # Garg's size (d = 20, 41 points, 12 layers), 3 seeds, + Exp3.S (GPU/TPU)
#   launch/reproduce/curriculum_icl.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/curriculum_icl_SIZE.{md,csv,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core; SEEDS overrides the seeds.
set -euo pipefail
NAME=curriculum_icl
EXPERIMENT=curriculum
# shellcheck source=icl_common.sh
source "$(dirname "$0")/icl_common.sh"
METHODS=(none garg alp_gmm tscl uniform)
case "$SIZE" in
  tiny) DEFAULT_SEEDS="0"; METHODS=(none garg alp_gmm) ;;
  small) DEFAULT_SEEDS="0 1" ;;
  full) DEFAULT_SEEDS="0 1 2"; METHODS+=(exp3s) ;;
esac
read -r -a SEED_LIST <<<"${SEEDS:-$DEFAULT_SEEDS}"

curriculum_run() {
  local teacher=${1% *} seed=${1#* }
  meta_train_in "$WORKDIR_ROOT/${teacher}_s${seed}_$SIZE" "curriculum $teacher seed $seed $SIZE" \
    --config="$ROOT/experiments/configs/in_context.py:curriculum,$SIZE,teacher=$teacher" \
    --config.seed="$seed"
}

RUNS=() DIRS=()
for seed in "${SEED_LIST[@]}"; do
  for teacher in "${METHODS[@]}"; do
    RUNS+=("$teacher $seed"); DIRS+=("$WORKDIR_ROOT/${teacher}_s${seed}_$SIZE")
  done
done
export SIZE WORKDIR_ROOT
run_parallel curriculum_run "${RUNS[@]}"
"$PYTHON" "$ROOT/experiments/curriculum_report.py" --workdirs="$(IFS=,; echo "${DIRS[*]}")" \
  --out="$RESULTS_DIR/${NAME}_$SIZE" --command="launch/reproduce/$NAME.sh $SIZE"
