#!/usr/bin/env bash
# Reproduces the influence-balancing experiment of PES (Vicol et al. 2021, section 5.1):
# PES vs truncated ES vs truncated backprop on a never-reset 23-dimensional linear system.
#
#   launch/reproduce/pes_influence_balancing.sh [small|full]   # the paper's settings (both)
#   launch/reproduce/pes_influence_balancing.sh tiny           # seconds: the tests' size
#
# small = full: 10 seeds x 5 methods x 3000 iterations, N = 1000 particles; ~2 min on a laptop CPU.
# Writes $RESULTS_DIR/pes_influence_balancing.{md,csv,json,png}.
set -euo pipefail
SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
case "$SIZE" in
  small|full) ARGS=(--seeds=10) ; OUT=$RESULTS_DIR/pes_influence_balancing ;;
  tiny) ARGS=(--seeds=2 --iterations=200 --particles=40 --eval_steps=50)
        OUT=$RESULTS_DIR/pes_influence_balancing_tiny ;;
  *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;;
esac
cd "$ROOT"
"$PYTHON" experiments/influence_balancing.py --out="$OUT" "${ARGS[@]}"
