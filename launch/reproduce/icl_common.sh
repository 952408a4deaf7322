# Shared by the in-context-learning reproductions (sourced with the script's arguments, after
# it sets NAME and EXPERIMENT): parses the size, sets the defaults, sources common.sh. The
# script then sets RUNS (config options, one run each, e.g. "layers=1") and calls
# icl_reproduce, which meta-trains the runs (PARALLEL at a time; each evaluates at its end) and
# writes the report.
SIZE=${1:-small}
case "$SIZE" in tiny|small|full) ;; *) echo "usage: $0 [tiny|small|full]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/$NAME}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"

icl_run() {
  local opts=$1 dir=${1//[=,]/_}
  meta_train_in "$WORKDIR_ROOT/${dir:-default}_$SIZE" "$EXPERIMENT $opts $SIZE" \
    --config="$ROOT/experiments/configs/in_context.py:$EXPERIMENT,$SIZE,$opts"
}

icl_reproduce() {
  export EXPERIMENT SIZE WORKDIR_ROOT
  run_parallel icl_run "${RUNS[@]}"
  local dirs=() opts dir
  for opts in "${RUNS[@]}"; do dir=${opts//[=,]/_}; dirs+=("$WORKDIR_ROOT/${dir:-default}_$SIZE"); done
  "$PYTHON" "$ROOT/experiments/icl_report.py" --experiment="$EXPERIMENT" \
    --workdirs="$(IFS=,; echo "${dirs[*]}")" --out="$RESULTS_DIR/${NAME}_$SIZE" \
    --command="launch/reproduce/$NAME.sh $SIZE"
}
