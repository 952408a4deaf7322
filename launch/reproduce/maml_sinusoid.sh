#!/usr/bin/env bash
# Reproduces MAML-family sinusoid regression: MAML, first-order MAML, Meta-SGD, ANIL, Reptile.
#
#   launch/reproduce/maml_sinusoid.sh small   # K=10, 1 seed, 3k outer steps: < 3 min on a laptop CPU
#   launch/reproduce/maml_sinusoid.sh full    # K=5,10,20 x 3 seeds, paper settings (70k steps)
#   launch/reproduce/maml_sinusoid.sh tiny    # 200 outer steps: the tests' size
#
# Writes results/maml_sinusoid.{md,csv} (full) or results/maml_sinusoid_small.{md,csv}.
# Environment: WORKDIR_ROOT (run workdirs), RESULTS_DIR, PARALLEL (runs at a time, default 1),
# PIN=1 (pin each concurrent run to its own CPU core: tiny models run faster on one core),
# PYTHON (interpreter, default python).
# Re-running resumes finished or interrupted runs from their workdirs.
set -euo pipefail

SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/maml_sinusoid_$SIZE}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PARALLEL=${PARALLEL:-1}
PIN=${PIN:-0}
PYTHON=${PYTHON:-python}
CONFIG=$ROOT/experiments/configs/maml_sinusoid.py
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
LEARNERS="maml fomaml metasgd anil reptile"

case "$SIZE" in
  small) KS="10"; SEEDS="0"; VARIANT=",small"; OUT=$RESULTS_DIR/maml_sinusoid_small ;;
  full)  KS="5 10 20"; SEEDS="0 1 2"; VARIANT=""; OUT=$RESULTS_DIR/maml_sinusoid ;;
  tiny)  KS="10"; SEEDS="0"; VARIANT=",tiny"; OUT=$RESULTS_DIR/maml_sinusoid_tiny ;;
  *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;;
esac

runs=()
for k in $KS; do for learner in $LEARNERS; do for seed in $SEEDS; do
  runs+=("$learner $k $seed")
done; done; done
echo "maml_sinusoid $SIZE: ${#runs[@]} runs into $WORKDIR_ROOT, $PARALLEL at a time"

run_one() {
  read -r learner k seed <<<"$1"
  meta_train_in "$WORKDIR_ROOT/${learner}_k${k}_seed${seed}" "$learner K=$k seed=$seed" \
    --config="$CONFIG:$learner,k=$k$VARIANT" --config.seed="$seed"
}
export CONFIG VARIANT WORKDIR_ROOT
status=0
run_parallel run_one "${runs[@]}" || status=$?

# The table covers every finished run; failed ones are listed in it, and the exit code is non-zero.
"$PYTHON" "$ROOT/experiments/report.py" --workdirs="$WORKDIR_ROOT/*" --published="$CONFIG" \
  --out="$OUT" --command="PARALLEL=$PARALLEL PIN=$PIN launch/reproduce/maml_sinusoid.sh $SIZE" \
  --allow_missing="$([ $status = 0 ] && echo false || echo true)"
exit $status
