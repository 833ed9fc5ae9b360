#!/usr/bin/env bash
# The README's first command: sets everything up (tools/setup.sh), then runs the main job
# on the embedded default data: synthetic shapes written as WebDataset shards, a
# SentencePiece tokenizer trained on their text, and a small paper-layout CoCa pretrained
# on 50/50 caption / labels-as-text batches (configs/pretrain/demo.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${COCA_BUILD_DIR:-build}
COCA="$BUILD_DIR/src/cli/coca"
CONFIG=configs/pretrain/demo.yaml
DATA=data/demo
RUN=runs/demo
STEPS=${COCA_DEMO_STEPS:-}   # optional override of train.steps (e.g. for a quick look)
start=$(date +%s)

"$COCA" --version
if [[ ! -f "$DATA/classes.txt" || ! -f "$DATA/val-00000.tar" ]]; then
  echo "[demo] writing the synthetic dataset to $DATA"
  "$COCA" data synth --out "$DATA" --samples 8000 --seed 0 --shard-size 1000 --split-name train
  "$COCA" data synth --out "$DATA" --samples 1000 --seed 99 --shard-size 1000 --split-name val
fi
if [[ ! -f "$DATA/spm.model" ]]; then
  echo "[demo] training the SentencePiece tokenizer on the dataset's text"
  "$COCA" tokenizer train --data "$CONFIG" --vocab-size 128 --out "$DATA/spm"
fi

args=(--config "$CONFIG" --set "train.resume=auto")
[[ -n "$STEPS" ]] && args+=(--set "train.steps=$STEPS")
echo "[demo] pretraining (progress every 10 steps; Ctrl-C saves a checkpoint, rerun resumes)"
"$COCA" train "${args[@]}"

echo "[demo] evaluating on the held-out split (zero-shot, retrieval, captioning)"
"$COCA" eval --checkpoint "$RUN/checkpoints" --out "$RUN/eval_results.json"

echo "[demo] captions of a few held-out images"
mkdir -p "$RUN/samples"
"$COCA" data convert "$DATA/val-00000.tar" --out "$RUN/samples/shard" --samples 4 --no-decode >/dev/null
tar -xf "$RUN/samples/shard/train-00000.tar" -C "$RUN/samples" --wildcards '*.png' '*.txt'
for png in "$RUN"/samples/*.png; do
  printf '%s\treference: %s\n' "$(basename "$png")" "$(cat "${png%.png}.txt")"
done
"$COCA" caption --checkpoint "$RUN/checkpoints" --beams 3 "$RUN"/samples/*.png

echo "[demo] exporting a self-contained safetensors folder"
"$COCA" export --checkpoint "$RUN/checkpoints" --format safetensors --out "$RUN/export"

echo
echo "[demo] done in $(( $(date +%s) - start )) s"
echo "  config:       $RUN/config.yaml"
echo "  metrics:      $RUN/metrics.jsonl"
echo "  checkpoints:  $RUN/checkpoints/"
echo "  eval results: $RUN/eval_results.json"
echo "  export:       $RUN/export/"
