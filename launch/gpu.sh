#!/usr/bin/env bash
# Meta-trains one config on every GPU of this host (one process; the meta-batch is split over
# the GPUs by the mesh, see metalearn/parallel.py). Needs the CUDA build of JAX:
#   pip install -U "jax[cuda12]" && pip install -e .
#
#   launch/gpu.sh experiments/configs/omniglot.py:maml,ways=5,shots=1,source=tfds /tmp/runs/o
#
# Environment: CUDA_VISIBLE_DEVICES (which GPUs), PYTHON, ALLOW_CPU=1 (run anyway when JAX
# sees no GPU, e.g. to test this script).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG[:ARG] WORKDIR [--config.key=value ...]" >&2; exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
gpus=$("$PYTHON" -c "import jax; print(sum(d.platform == 'gpu' for d in jax.devices()))" \
       2>/dev/null || echo 0)
if [ "$gpus" = 0 ] && [ "${ALLOW_CPU:-0}" != 1 ]; then
  echo "JAX sees no GPU: install the CUDA build (pip install -U \"jax[cuda12]\"), check" \
       "nvidia-smi and CUDA_VISIBLE_DEVICES, or set ALLOW_CPU=1 to run on the CPU" >&2
  exit 1
fi
echo "launch/gpu.sh: $gpus GPU(s)"
# Let XLA take GPU memory as it needs it rather than 75% up front: evaluation and the
# benchmark compile several programs side by side.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
exec "$PYTHON" "$ROOT/experiments/meta_train.py" --config="$1" --workdir="$2" \
  --config.mesh.data=-1 "${@:3}"
