#!/usr/bin/env bash
# Raventos et al. 2023: as the pool of pretraining tasks grows, the in-context learner moves from
# the discrete-prior Bayes estimator (dMMSE) to ridge regression on new tasks.
#
#   launch/reproduce/icl_task_diversity.sh small   # d = 4, pools 2^2 .. 2^12, ~25 min on a 2-core CPU
#   launch/reproduce/icl_task_diversity.sh full    # d = 8, pools to 2^16, width 256, 8 layers (GPU/TPU)
#   launch/reproduce/icl_task_diversity.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/icl_task_diversity_SIZE.{md,csv,json,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core.
set -euo pipefail
SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/icl_task_diversity}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
EXPERIMENT=task_diversity
NAME=icl_task_diversity
RUNS=()
for p in 2 4 6 8 10; do RUNS+=("pool=$((2 ** p))"); done
if [ "$SIZE" = full ]; then RUNS+=("pool=4096" "pool=16384" "pool=65536"); fi
if [ "$SIZE" = tiny ]; then RUNS=("pool=2" "pool=64"); fi
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
# shellcheck source=icl_common.sh
source "$ROOT/launch/reproduce/icl_common.sh"
icl_reproduce
