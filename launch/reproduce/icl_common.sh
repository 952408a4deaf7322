# Shared by the in-context-learning reproductions (sourced after common.sh): meta-trains one
# run per config ARG (PARALLEL at a time; each evaluates at its end), then writes the report.
# Needs ROOT, PYTHON, SIZE, EXPERIMENT, WORKDIR_ROOT, RESULTS_DIR, NAME and RUNS (an array of
# config options, one run each, e.g. "layers=1").

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
