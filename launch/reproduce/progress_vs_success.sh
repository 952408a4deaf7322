#!/usr/bin/env bash
# progress_vs_success: the thesis, tested. The same network meta-trained two ways:
#   * reading whole compositional-regression textbooks in order (the sequential learner), with
#     the progress objective (area under the normalised whole-book curve) and a
#     learning-progress teacher (TSCL) choosing how many chapters each book has;
#   * as MAML with the final-loss objective on single chapters drawn uniformly (success);
# plus, to separate the parts: the progress objective on whole books without a teacher, and
# the area under the book's curve (`mean`, a success-weighted objective) on whole books.
# All are evaluated reading held-out books in order: area under the learning curve, final
# loss, forward transfer, forgetting, with 95% CIs over seeds.
#
#   launch/reproduce/progress_vs_success.sh small   # 5 chapters x 10 exercises, 3000 steps, 3 seeds (~40 min on a 2-core CPU)
#   launch/reproduce/progress_vs_success.sh full    # 10 chapters x 20 exercises, 20k steps, 5 seeds (GPU)
#   launch/reproduce/progress_vs_success.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/progress_vs_success_SIZE.{md,csv,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core; SEEDS overrides the seeds.
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/progress_vs_success}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
case "$SIZE" in tiny) DEFAULT_SEEDS="0" ;; small) DEFAULT_SEEDS="0 1 2" ;; full) DEFAULT_SEEDS="0 1 2 3 4" ;; esac
read -r -a SEED_LIST <<<"${SEEDS:-$DEFAULT_SEEDS}"
# name -> "learner objective teacher"
declare -A CONDITIONS=([progress_teacher]="sequential progress tscl"
                       [progress_books]="sequential progress none"
                       [mean_books]="sequential mean none"
                       [success_single]="maml final none")

condition_run() {
  local name=${1% *} seed=${1#* }
  read -r learner objective teacher <<<"$2"
  local flags=(--config.objective.name="$objective" --config.seed="$seed")
  if [ "$teacher" != none ]; then flags+=(--config.curriculum.name="$teacher"); fi
  meta_train_in "$WORKDIR_ROOT/${name}_s${seed}_$SIZE" "$name seed $seed $SIZE" \
    --config="$ROOT/experiments/configs/textbook.py:regression,$SIZE,$learner" "${flags[@]}"
}
export -f condition_run
export SIZE WORKDIR_ROOT

RUNS=() DIRS=()
for seed in "${SEED_LIST[@]}"; do
  for name in progress_teacher progress_books mean_books success_single; do
    RUNS+=("$name $seed|${CONDITIONS[$name]}"); DIRS+=("$WORKDIR_ROOT/${name}_s${seed}_$SIZE")
  done
done
one_run() { condition_run "${1%|*}" "${1#*|}"; }
run_parallel one_run "${RUNS[@]}"
"$PYTHON" "$ROOT/experiments/progress_report.py" --workdirs="$(IFS=,; echo "${DIRS[*]}")" \
  --out="$RESULTS_DIR/progress_vs_success_$SIZE" --command="launch/reproduce/progress_vs_success.sh $SIZE"
