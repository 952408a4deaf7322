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
NAME=icl_task_diversity
EXPERIMENT=task_diversity
# shellcheck source=icl_common.sh
source "$(dirname "$0")/icl_common.sh"
RUNS=()
for p in 2 4 6 8 10; do RUNS+=("pool=$((2 ** p))"); done
if [ "$SIZE" = full ]; then RUNS+=("pool=4096" "pool=16384" "pool=65536"); fi
if [ "$SIZE" = tiny ]; then RUNS=("pool=2" "pool=64"); fi
icl_reproduce
