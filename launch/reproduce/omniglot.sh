#!/usr/bin/env bash
# Reproduces few-shot Omniglot classification: the MAML family and Prototypical Networks.
#
#   launch/reproduce/omniglot.sh small  # Omniglot-mini (offline zips), MAML + ProtoNets, 5-way
#                                       # 1/5-shot: ~35 min per run on one CPU core
#   launch/reproduce/omniglot.sh full   # full Omniglot from tfds, MAML, FOMAML, Reptile,
#                                       # ProtoNets; 5/20-way 1/5-shot; paper settings (GPU)
#   launch/reproduce/omniglot.sh tiny   # a smoke test of the pipeline (seconds per run)
#
# Writes results/omniglot.{md,csv} (full), results/omniglot_small.{md,csv} or
# results/omniglot_tiny.{md,csv}.
# Environment: METALEARN_OMNIGLOT_DIR (small/tiny: the directory with
# images_background_small1.zip and images_background_small2.zip), TFDS_DATA_DIR (full: tfds
# data with omniglot prepared as array_record), WORKDIR_ROOT, RESULTS_DIR, PARALLEL (runs at a
# time, default 1), PIN=1 (pin each concurrent run to its own CPU core), PYTHON, LEARNERS and
# SETTINGS (override the lists below, e.g. SETTINGS="5,1").
# Re-running resumes finished or interrupted runs from their workdirs.
set -euo pipefail

SIZE=${1:-small}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/omniglot_$SIZE}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PARALLEL=${PARALLEL:-1}
PIN=${PIN:-0}
PYTHON=${PYTHON:-python}
CONFIG=$ROOT/experiments/configs/omniglot.py
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"

case "$SIZE" in
  tiny)  DEF_LEARNERS="maml protonet"; DEF_SETTINGS="5,1"; VARIANT=",tiny"
         OUT=$RESULTS_DIR/omniglot_tiny ;;
  small) DEF_LEARNERS="maml protonet"; DEF_SETTINGS="5,1 5,5"; VARIANT=",mini"
         OUT=$RESULTS_DIR/omniglot_small ;;
  full)  DEF_LEARNERS="maml fomaml reptile protonet"; DEF_SETTINGS="5,1 5,5 20,1 20,5"
         VARIANT=",source=tfds"; OUT=$RESULTS_DIR/omniglot ;;
  *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;;
esac
LEARNERS=${LEARNERS:-$DEF_LEARNERS}
SETTINGS=${SETTINGS:-$DEF_SETTINGS}
if [ "$SIZE" != full ] && [ -z "${METALEARN_OMNIGLOT_DIR:-}" ]; then
  echo "set METALEARN_OMNIGLOT_DIR to the directory holding images_background_small1.zip and" \
       "images_background_small2.zip (in this repository's workspace: ../shared/data/omniglot)" >&2
  exit 2
fi

runs=()
for setting in $SETTINGS; do for learner in $LEARNERS; do
  runs+=("$learner ${setting%,*} ${setting#*,}")
done; done
echo "omniglot $SIZE: ${#runs[@]} runs into $WORKDIR_ROOT, $PARALLEL at a time"

run_one() {
  read -r learner ways shots <<<"$1"
  meta_train_in "$WORKDIR_ROOT/${learner}_${ways}w${shots}s" "$learner $ways-way $shots-shot" \
    --config="$CONFIG:$learner,ways=$ways,shots=$shots$VARIANT"
}
export CONFIG VARIANT WORKDIR_ROOT
status=0
run_parallel run_one "${runs[@]}" || status=$?

"$PYTHON" "$ROOT/experiments/report.py" --workdirs="$WORKDIR_ROOT/*" --published="$CONFIG" \
  --out="$OUT" --command="PARALLEL=$PARALLEL PIN=$PIN launch/reproduce/omniglot.sh $SIZE" \
  --allow_missing="$([ $status = 0 ] && echo false || echo true)"
exit $status
