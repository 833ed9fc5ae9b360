#!/usr/bin/env bash
# The real-data recipe: builds (tools/setup.sh), writes the Fashion-MNIST and TuxPaint
# shards (tools/prepare_real_data.sh, installs the two Debian packages as root), trains a
# SentencePiece tokenizer on their text, pretrains configs/pretrain/real_small.yaml and
# evaluates it (Fashion-MNIST zero-shot top-1; retrieval and CIDEr on held-out stamps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${COCA_BUILD_DIR:-build}
COCA="$BUILD_DIR/src/cli/coca"
CONFIG=configs/pretrain/real_small.yaml
RUN=runs/real_small
STEPS=${COCA_REAL_STEPS:-}   # optional override of train.steps
start=$(date +%s)

COCA="$COCA" bash tools/prepare_real_data.sh
if [[ ! -f data/real/spm.model ]]; then
  echo "[real] training the SentencePiece tokenizer on the training text"
  "$COCA" tokenizer train --data "$CONFIG" --vocab-size 256 --out data/real/spm
fi

args=(--config "$CONFIG" --set "train.resume=auto")
[[ -n "$STEPS" ]] && args+=(--set "train.steps=$STEPS")
echo "[real] pretraining (Ctrl-C saves a checkpoint, rerun resumes)"
train_start=$(date +%s)
"$COCA" train "${args[@]}"
echo "[real] training took $(( $(date +%s) - train_start )) s"

echo "[real] evaluating: Fashion-MNIST zero-shot, TuxPaint retrieval and captioning"
"$COCA" eval --checkpoint "$RUN/checkpoints" --out "$RUN/eval_results.json"
echo "[real] done in $(( $(date +%s) - start )) s; results: $RUN/eval_results.json"
