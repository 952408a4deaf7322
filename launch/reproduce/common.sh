# Shared by launch/reproduce/*.sh (sourced): one meta_train.py run per workdir, runs in parallel.
# Needs ROOT, PYTHON, PIN (1: pin each concurrent run to its own core) and PARALLEL.

# binary_in BINARY WORKDIR LABEL [flags...]: runs experiments/BINARY.py on WORKDIR, logs to
# WORKDIR/log.txt, records the wall time in WORKDIR/wall_seconds.txt, prints "done: LABEL" or
# "FAILED: LABEL" (exit 1).
binary_in() {
  local binary=$1 workdir=$2 label=$3; shift 3
  mkdir -p "$workdir"
  local pin=()
  if [ "$PIN" = 1 ]; then pin=(taskset -c $((SLOT % $(nproc)))); fi
  local t0=$SECONDS
  "${pin[@]}" "$PYTHON" "$ROOT/experiments/$binary.py" --workdir="$workdir" "$@" \
    >"$workdir/log.txt" 2>&1 \
    || { echo "FAILED: $label (see $workdir/log.txt)" >&2; tail -20 "$workdir/log.txt" >&2
         return 1; }
  echo "$((SECONDS - t0))" >"$workdir/wall_seconds.txt"
  echo "done: $label in $((SECONDS - t0)) s"
}

# meta_train_in WORKDIR LABEL [meta_train.py flags...]: binary_in for meta_train.py.
meta_train_in() { binary_in meta_train "$@"; }

# run_parallel FUNCTION RUN...: FUNCTION (exported with its variables) once per RUN string,
# PARALLEL at a time; returns non-zero if any run failed.
run_parallel() {
  local fn=$1; shift
  export -f binary_in meta_train_in "$fn"
  export ROOT PYTHON PIN
  printf '%s\n' "$@" | xargs -P "$PARALLEL" --process-slot-var=SLOT -I{} \
    bash -c "$fn \"\$@\"" _ {}
}

# knowledge_base SIZE: the base model of the LM reading scripts, an HF directory: $BASE if set,
# else a knowledge-storage pretraining (augmented, mix training, seed 0) in
# $WORKDIR_ROOT/base_SIZE, run once. Prints its path.
knowledge_base() {
  local size=$1
  if [ -n "${BASE:-}" ]; then
    [ -f "$BASE/config.json" ] || { echo "BASE=$BASE holds no config.json (an HF model directory)" >&2; return 2; }
    echo "$BASE"; return
  fi
  local run="$WORKDIR_ROOT/base_$size"
  if [ ! -f "$run/summary.json" ]; then
    SLOT=0 binary_in lm_pretrain "$run" "base model (augmented, mix training)" \
      --config="$ROOT/experiments/configs/lm/knowledge.py:$size,augmented,bios+qa" >&2
  fi
  echo "$run/model"
}

# tuned_flags BASELINE_JSON [share]: the config flags giving a reader the learning rate (and with
# "share", the replay share) lm_meta_reading.sh's tuned baseline chose, from its baseline.json.
tuned_flags() {
  "$PYTHON" - "$@" <<'PY'
import json, sys
chosen = json.load(open(sys.argv[1]))["chosen"]
flags = [f"--config.learner.init_lr={chosen['lr']}"]
if sys.argv[2:] == ["share"]:
  flags.append(f"--config.task.replay_share={chosen['replay_share']}")
print(" ".join(flags))
PY
}
