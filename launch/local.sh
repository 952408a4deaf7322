#!/usr/bin/env bash
# Meta-trains one config on this machine: one process on every local device, or (to try the
# multi-host path on one machine) NUM_PROCESSES processes joined by jax.distributed.
#
#   launch/local.sh experiments/configs/maml_sinusoid.py:maml /tmp/runs/maml [--config.k=v ...]
#   NUM_PROCESSES=2 DEVICES_PER_PROCESS=4 launch/local.sh CONFIG WORKDIR   # 2 x 4 CPU devices
#
# Environment: NUM_PROCESSES (default 1), DEVICES_PER_PROCESS (simulated CPU devices per
# process when NUM_PROCESSES > 1, default 1), PORT (coordinator port, default 12355), PYTHON.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG[:ARG] WORKDIR [--config.key=value ...]" >&2; exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG=$1; WORKDIR=$2; shift 2
PYTHON=${PYTHON:-python}
NUM_PROCESSES=${NUM_PROCESSES:-1}
cmd=("$PYTHON" "$ROOT/experiments/meta_train.py" "--config=$CONFIG" "--workdir=$WORKDIR" "$@")
if [ "$NUM_PROCESSES" = 1 ]; then
  exec "${cmd[@]}"
fi
export METALEARN_COORDINATOR=localhost:${PORT:-12355} METALEARN_NUM_PROCESSES=$NUM_PROCESSES
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${DEVICES_PER_PROCESS:-1}"
mkdir -p "$WORKDIR"
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  # Process 0 prints; the others log to WORKDIR/process_<i>.log.
  if [ "$i" = 0 ]; then
    METALEARN_PROCESS_ID=$i "${cmd[@]}" & pids+=($!)
  else
    METALEARN_PROCESS_ID=$i "${cmd[@]}" >"$WORKDIR/process_$i.log" 2>&1 & pids+=($!)
  fi
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
