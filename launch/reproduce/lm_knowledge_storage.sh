#!/usr/bin/env bash
# lm_knowledge_storage: Physics of Language Models 3.1 on the biography textbook. A decoder LM
# reads every person's biographies and is asked about people whose questions it never trained
# on, with the biographies written plainly (one per person, the full name once) or augmented
# (five per person, fresh templates, shuffled sentences, the full name in every sentence),
# under two protocols:
#   * mix training: biographies and the questions of half the people in one corpus;
#   * pretraining on the biographies alone, then fine-tuning on the questions of that half.
# Exact-answer accuracy on the other half's questions, per attribute, 95% CIs over seeds, and
# the learning curves.
#
#   launch/reproduce/lm_knowledge_storage.sh small   # 300 people, a 1M-parameter Llama, 3 seeds (this CPU)
#   launch/reproduce/lm_knowledge_storage.sh gpu     # 10k people, a 30M-parameter Llama, 3 seeds (one H200)
#   launch/reproduce/lm_knowledge_storage.sh full    # the paper's 100k people, GPT-2-small size, 1 seed
#   launch/reproduce/lm_knowledge_storage.sh tiny    # seconds: the tests' size
#
# Writes $RESULTS_DIR/lm_knowledge_storage_SIZE.{md,csv,png}; re-running resumes finished runs.
# PARALLEL runs at a time (default 2); PIN=1 pins each to its own core; SEEDS overrides the
# seeds; PROTOCOLS ("mix finetune" by default) picks the protocols.
set -euo pipefail
SIZE=${1:-small}
case "$SIZE" in tiny|small|gpu|full) ;; *) echo "usage: $0 [tiny|small|gpu|full]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORKDIR_ROOT=${WORKDIR_ROOT:-$ROOT/workdirs/lm_knowledge_storage}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/results}
PYTHON=${PYTHON:-python}
PIN=${PIN:-0}
PARALLEL=${PARALLEL:-2}
# shellcheck source=common.sh
source "$ROOT/launch/reproduce/common.sh"
case "$SIZE" in tiny|full) DEFAULT_SEEDS="0" ;; *) DEFAULT_SEEDS="0 1 2" ;; esac
read -r -a SEED_LIST <<<"${SEEDS:-$DEFAULT_SEEDS}"
read -r -a PROTOCOL_LIST <<<"${PROTOCOLS:-mix finetune}"
CONFIG="$ROOT/experiments/configs/lm/knowledge.py"

# one_run "PROTOCOL WRITING SEED": mix is one lm_pretrain.py run; finetune is two, the second
# starting from the first's exported model.
one_run() {
  read -r protocol writing seed <<<"$1"
  local dir="$WORKDIR_ROOT/${protocol}_${writing}_s${seed}_$SIZE"
  if [ "$protocol" = mix ]; then
    binary_in lm_pretrain "$dir" "mix $writing seed $seed" \
      --config="$CONFIG:$SIZE,$writing,bios+qa" --config.seed="$seed"
  else
    binary_in lm_pretrain "$dir/pretrain" "pretrain $writing seed $seed" \
      --config="$CONFIG:$SIZE,$writing,bios" --config.seed="$seed" || return 1
    binary_in lm_pretrain "$dir/finetune" "fine-tune $writing seed $seed" \
      --config="$CONFIG:$SIZE,$writing,qa" --config.seed="$seed" \
      --config.init_from="$dir/pretrain/model"
  fi
}
export -f one_run
export SIZE WORKDIR_ROOT CONFIG

RUNS=() DIRS=()
for protocol in "${PROTOCOL_LIST[@]}"; do
  case "$protocol" in mix|finetune) ;; *) echo "PROTOCOLS: mix and/or finetune" >&2; exit 2 ;; esac
  for seed in "${SEED_LIST[@]}"; do
    for writing in plain augmented; do
      RUNS+=("$protocol $writing $seed")
      dir="$WORKDIR_ROOT/${protocol}_${writing}_s${seed}_$SIZE"
      if [ "$protocol" = mix ]; then DIRS+=("$dir"); else DIRS+=("$dir/finetune"); fi
    done
  done
done
run_parallel one_run "${RUNS[@]}"
"$PYTHON" "$ROOT/experiments/knowledge_report.py" --workdirs="$(IFS=,; echo "${DIRS[*]}")" \
  --out="$RESULTS_DIR/lm_knowledge_storage_$SIZE" \
  --command="launch/reproduce/lm_knowledge_storage.sh $SIZE"
