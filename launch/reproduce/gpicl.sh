#!/usr/bin/env bash
# Kirsch et al. 2022 (GPICL): projected classification with 2^4 .. 2^16 distinct tasks (small: 2^4, 2^6, 2^8,
# 2^12, 2^16; full adds 2^10 and 2^14); seen vs
# unseen task accuracy shows the memorisation -> generalisation transition.
#
#   launch/reproduce/gpicl.sh small   # procedural base data, ~30 min on a 2-core CPU
#   launch/reproduce/gpicl.sh full    # MNIST base data, width 256, 100k steps (GPU/TPU)
#   launch/reproduce/gpicl.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/gpicl_SIZE.{md,csv,json,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core.
set -euo pipefail
NAME=gpicl
EXPERIMENT=gpicl
# shellcheck source=icl_common.sh
source "$(dirname "$0")/icl_common.sh"
RUNS=()
for p in 4 6 8 12 16; do RUNS+=("tasks=$((2 ** p))"); done
if [ "$SIZE" = full ]; then RUNS+=("tasks=1024" "tasks=16384"); fi
if [ "$SIZE" = tiny ]; then RUNS=("tasks=2" "tasks=256"); fi
icl_reproduce
