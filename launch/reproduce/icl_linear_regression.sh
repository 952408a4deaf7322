#!/usr/bin/env bash
# Garg et al. 2022, Fig. 2: a small transformer learns linear regression in context and tracks
# least squares; error vs number of in-context examples beside least squares, averaging, 3-NN.
#
#   launch/reproduce/icl_linear_regression.sh small   # d = 5, 11 points, ~10 min on a 2-core CPU
#   launch/reproduce/icl_linear_regression.sh full    # d = 20, 41 points, 12 layers, curriculum, sparse/ReLU/tree, OOD (GPU/TPU)
#   launch/reproduce/icl_linear_regression.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/icl_linear_regression_SIZE.{md,csv,json,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core.
set -euo pipefail
NAME=icl_linear_regression
EXPERIMENT=linear_regression
# shellcheck source=icl_common.sh
source "$(dirname "$0")/icl_common.sh"
RUNS=("class=linear")
if [ "$SIZE" = full ]; then RUNS+=("class=sparse_linear" "class=relu_net" "class=decision_tree"); fi
icl_reproduce
