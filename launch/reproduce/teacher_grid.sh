#!/usr/bin/env bash
# Curriculum teachers on the prerequisite grid (issue 6; the toy test bed of Portelas et al.
# 2019): uniform, a textbook order, TSCL, Exp3.S and ALP-GMM, % of cells mastered.
#
#   launch/reproduce/teacher_grid.sh small   # the issue's bars: 20k episodes x 10 seeds, ~1 min on 2 CPU cores
#   launch/reproduce/teacher_grid.sh full    # 50k episodes x 30 seeds
#   launch/reproduce/teacher_grid.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/teacher_grid_SIZE.{md,csv,json,png}.
set -euo pipefail
SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
case "$SIZE" in
  small) ARGS=(--episodes=20000 --seeds=10 --record_every=100) ;;
  full) ARGS=(--episodes=50000 --seeds=30 --record_every=250) ;;
  tiny) ARGS=(--episodes=600 --seeds=2 --record_every=100) ;;
  *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;;
esac
cd "$ROOT"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  "$PYTHON" experiments/teacher_grid.py --out="$RESULTS_DIR/teacher_grid_$SIZE" "${ARGS[@]}"
