#!/usr/bin/env bash
# von Oswald et al. 2023: linear self-attention with 1, 2 and 3 layers against 1, 2 and 3 steps
# of gradient descent (step sizes tuned) on d = 10 linear regression with 10 context points.
#
#   launch/reproduce/icl_gd.sh small   # ~5 min on a 2-core CPU
#   launch/reproduce/icl_gd.sh full    # batch 2048, 40k steps (GPU/TPU)
#   launch/reproduce/icl_gd.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/icl_gd_SIZE.{md,csv,json,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core.
set -euo pipefail
NAME=icl_gd
EXPERIMENT=gd
# shellcheck source=icl_common.sh
source "$(dirname "$0")/icl_common.sh"
RUNS=("layers=1" "layers=2" "layers=3")
if [ "$SIZE" = tiny ]; then RUNS=("layers=1" "layers=2"); fi
icl_reproduce
