#!/usr/bin/env bash
# Reproduces short-horizon bias (Wu, Ren, Liao & Grosse 2018, ICLR) on the noisy quadratic model:
# step-size schedules meta-learned with a horizon-1 (greedy) objective, the full-horizon final
# loss, our progress objective, and PES, each scored by its exact expected learning curve.
#
#   launch/reproduce/short_horizon_bias.sh small   # n = 100, T = 1000, 2 seeds: the bars; ~4 min
#                                                  # on a 2-core CPU
#   launch/reproduce/short_horizon_bias.sh full    # n = 1000, T = 1000, 5 seeds, longer meta-
#                                                  # training (GPU, or ~1 h on a laptop CPU)
#   launch/reproduce/short_horizon_bias.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/short_horizon_bias_<size>.{md,csv,json,png}.
set -euo pipefail
SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
cd "$ROOT"
"$PYTHON" experiments/short_horizon_bias.py \
  --config="experiments/configs/reproductions/short_horizon_bias.py:$SIZE" \
  --out="$RESULTS_DIR/short_horizon_bias_$SIZE"
