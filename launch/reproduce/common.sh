# Shared by launch/reproduce/*.sh (sourced): one meta_train.py run per workdir, runs in parallel.
# Needs ROOT, PYTHON, PIN (1: pin each concurrent run to its own core) and PARALLEL.

# meta_train_in WORKDIR LABEL [meta_train.py flags...]: logs to WORKDIR/log.txt, records the
# wall time in WORKDIR/wall_seconds.txt, prints "done: LABEL" or "FAILED: LABEL" (exit 1).
meta_train_in() {
  local workdir=$1 label=$2; shift 2
  mkdir -p "$workdir"
  local pin=()
  if [ "$PIN" = 1 ]; then pin=(taskset -c $((SLOT % $(nproc)))); fi
  local t0=$SECONDS
  "${pin[@]}" "$PYTHON" "$ROOT/experiments/meta_train.py" --workdir="$workdir" "$@" \
    >"$workdir/log.txt" 2>&1 \
    || { echo "FAILED: $label (see $workdir/log.txt)" >&2; tail -20 "$workdir/log.txt" >&2
         return 1; }
  echo "$((SECONDS - t0))" >"$workdir/wall_seconds.txt"
  echo "done: $label in $((SECONDS - t0)) s"
}

# run_parallel FUNCTION RUN...: FUNCTION (exported with its variables) once per RUN string,
# PARALLEL at a time; returns non-zero if any run failed.
run_parallel() {
  local fn=$1; shift
  export -f meta_train_in "$fn"
  export ROOT PYTHON PIN
  printf '%s\n' "$@" | xargs -P "$PARALLEL" --process-slot-var=SLOT -I{} \
    bash -c "$fn \"\$@\"" _ {}
}
