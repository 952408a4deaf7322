#!/usr/bin/env bash
# Runs metalearn on every worker of a Cloud TPU VM slice. Provisioning, setup, running and
# teardown are separate steps, so a slice is created once and reused for many runs:
#
#   launch/tpu_pod.sh create            # gcloud compute tpus tpu-vm create (TPU_TYPE, VERSION)
#   launch/tpu_pod.sh setup             # copy this checkout to every worker, pip install,
#                                       # mount BUCKET at /mnt/metalearn with gcsfuse
#   launch/tpu_pod.sh run CONFIG[:ARG] RUN_NAME [--config.key=value ...]
#                                       # workdir /mnt/metalearn/RUN_NAME, shared by all workers
#   launch/tpu_pod.sh delete            # teardown: delete the slice (the bucket stays)
#
# Environment: TPU_NAME, ZONE, PROJECT (gcloud's default if unset), TPU_TYPE (e.g. v5litepod-16),
# VERSION (TPU VM runtime, e.g. v2-alpha-tpuv5-lite), BUCKET (gs://... for workdirs),
# DRY_RUN=1 (print the gcloud commands instead of running them).
# Every worker runs the same command; METALEARN_DISTRIBUTED=1 makes each call
# jax.distributed.initialize(), which finds the slice's workers by itself. Process 0 writes the
# workdir, so it must be a filesystem all workers see: the gcsfuse mount of BUCKET.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
project=(); [ -n "${PROJECT:-}" ] && project=(--project="$PROJECT")
g() {
  if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' gcloud "$@"; echo; else gcloud "$@"; fi
}
on_all() { g compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" "${project[@]}" --worker=all \
             --command="$1"; }

case "${1:-}" in
  create)
    : "${TPU_TYPE:?set TPU_TYPE}" "${VERSION:?set VERSION}"
    g compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" "${project[@]}" \
      --accelerator-type="$TPU_TYPE" --version="$VERSION" ;;
  setup)
    : "${BUCKET:?set BUCKET (gs://...)}"
    tarball=$(mktemp --suffix=.tar.gz)
    git -C "$ROOT" archive --format=tar.gz -o "$tarball" HEAD
    g compute tpus tpu-vm scp "$tarball" "$TPU_NAME:~/metalearn.tar.gz" --zone="$ZONE" \
      "${project[@]}" --worker=all
    on_all "set -e; rm -rf ~/metalearn && mkdir ~/metalearn && tar -xzf ~/metalearn.tar.gz -C ~/metalearn && pip install -U 'jax[tpu]' && pip install -e ~/metalearn && sudo mkdir -p /mnt/metalearn && sudo chown \$USER /mnt/metalearn && (mountpoint -q /mnt/metalearn || gcsfuse --implicit-dirs ${BUCKET#gs://} /mnt/metalearn)" ;;
  run)
    [ $# -ge 3 ] || { echo "usage: $0 run CONFIG[:ARG] RUN_NAME [--config.key=value ...]" >&2; exit 2; }
    config=$2; name=$3; shift 3
    extra=$(printf '%q ' "$@")
    on_all "cd ~/metalearn && METALEARN_DISTRIBUTED=1 python experiments/meta_train.py --config=$config --workdir=/mnt/metalearn/$name $extra" ;;
  delete)
    g compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" "${project[@]}" --quiet ;;
  *) echo "usage: $0 create|setup|run|delete (see the header)" >&2; exit 2 ;;
esac
