#!/usr/bin/env bash
# Meta-trains a learned optimizer with PES on MLP tasks with fresh data, then evaluates it
# against Adam and SGD with momentum at every step size of a grid, in and out of family.
#
#   launch/reproduce/learned_optimizer.sh small   # 2-core CPU: mlp_lopt ~6 min, small_lopt ~15 (+ ~6 min eval)
#   launch/reproduce/learned_optimizer.sh full    # GPU/TPU, hours
#   launch/reproduce/learned_optimizer.sh tiny    # seconds: the tests' size
#
# LOPT picks the learned optimizer (mlp_lopt, small_lopt, lstm_lopt, hyper_lopt; default
# mlp_lopt); OBJECTIVE overrides the config's meta-objective (e.g. late_mean). Writes
# $RESULTS_DIR/learned_optimizer_[LOPT_][OBJECTIVE_]SIZE.{md,json,png}; re-running resumes.
set -euo pipefail
SIZE=${1:-small}
LOPT=${LOPT:-mlp_lopt}
OBJECTIVE=${OBJECTIVE:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/learned_optimizer}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=1
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
CONFIG="$ROOT/experiments/configs/learned_optimizer.py:$LOPT,$SIZE${OBJECTIVE:+,objective=$OBJECTIVE}"
WORKDIR=$WORKDIR_ROOT/${LOPT}_${OBJECTIVE:+${OBJECTIVE}_}$SIZE
SUFFIX=$([ "$LOPT" = mlp_lopt ] || echo "${LOPT}_")${OBJECTIVE:+${OBJECTIVE}_}$SIZE
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
SLOT=0 meta_train_in "$WORKDIR" "$LOPT $SIZE" --config="$CONFIG"
"$PYTHON" "$ROOT/experiments/lopt_report.py" --config="$CONFIG" --workdir="$WORKDIR" \
  --out="$RESULTS_DIR/learned_optimizer_$SUFFIX" \
  --command="LOPT=$LOPT ${OBJECTIVE:+OBJECTIVE=$OBJECTIVE }launch/reproduce/learned_optimizer.sh $SIZE"
