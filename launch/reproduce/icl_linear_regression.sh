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
SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/icl_linear_regression}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
EXPERIMENT=linear_regression
NAME=icl_linear_regression
RUNS=("class=linear")
if [ "$SIZE" = full ]; then RUNS+=("class=sparse_linear" "class=relu_net" "class=decision_tree"); fi
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
# shellcheck source=icl_common.sh
source "$ROOT/launch/reproduce/icl_common.sh"
icl_reproduce
