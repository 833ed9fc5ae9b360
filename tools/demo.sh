#!/usr/bin/env bash
# The README's first command: sets everything up (tools/setup.sh), then runs the main job
# on the embedded default data: synthetic shapes written as WebDataset shards, a
# SentencePiece tokenizer trained on their text, and a small paper-layout CoCa pretrained
# on 50/50 caption / labels-as-text batches (configs/pretrain/demo.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -n "${COCA_DEMO_SKIP_SETUP:-}" ]] || bash tools/setup.sh   # set to reuse an existing build
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
  "$COCA" data synth --out "$DATA" --samples 2000 --seed 99 --shard-size 2000 --split-name val
fi
if [[ ! -f "$DATA/spm.model" ]]; then
  echo "[demo] training the SentencePiece tokenizer on the dataset's text"
  "$COCA" tokenizer train --data "$CONFIG" --vocab-size 256 --model-type bpe --out "$DATA/spm"
fi

args=(--config "$CONFIG" --set "train.resume=auto")
[[ -n "$STEPS" ]] && args+=(--set "train.steps=$STEPS")
# bf16 autocast where the CPU multiplies bf16 natively (AVX512-BF16 or AMX; oneDNN then runs the
# GEMMs ~3.5x faster than fp32 and the run takes ~7.5 min instead of ~10); elsewhere bf16 would be
# emulated, so fp32. COCA_DEMO_PRECISION=fp32|bf16 overrides.
PRECISION=${COCA_DEMO_PRECISION:-}
if [[ -z "$PRECISION" ]]; then
  PRECISION=fp32
  grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && PRECISION=bf16
fi
args+=(--set "train.precision=$PRECISION")
echo "[demo] pretraining in $PRECISION (progress every 10 steps; Ctrl-C saves a checkpoint, rerun resumes)"
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

echo "[demo] plotting the run's curves"
PY=/usr/bin/python3
[[ -x "$PY" ]] || PY=python3
plots="not written"
if "$PY" tools/plot_metrics.py "$RUN"; then
  plots="$RUN/plots/ (loss.png, lr.png, throughput.png, eval.png)"
else
  echo "[demo] no plots: tools/plot_metrics.py needs Debian's python3-matplotlib (tools/setup.sh installs it)"
fi

echo "[demo] exporting a self-contained safetensors folder"
"$COCA" export --checkpoint "$RUN/checkpoints" --format safetensors --out "$RUN/export"
echo "[demo] (no open_clip export: open_clip's key tree has one pooler, two blocks per decoder" \
     "layer and CLIP BPE, so only a 'model.layout: open_clip' model maps onto it; this is 'paper')"

wall=$(( $(date +%s) - start ))
echo
echo "[demo] done in ${wall} s"
"$PY" - "$RUN/eval_results.json" "$wall" <<'PYEOF' || cat "$RUN/eval_results.json"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
pct = lambda k: f"{100 * m[k]:.1f}%" if k in m else "-"
num = lambda k: f"{m[k]:.3f}" if k in m else "-"
rows = [("zero-shot top-1 / top-5", f"{pct('zero_shot_top1')} / {pct('zero_shot_top5')}"
         f"  ({int(m.get('zero_shot_images', 0))} single-label images, 28 classes)"),
        ("image->text R@1 / R@5", f"{pct('i2t_r1')} / {pct('i2t_r5')}"),
        ("text->image R@1 / R@5", f"{pct('t2i_r1')} / {pct('t2i_r5')}"
         f"  ({int(m.get('retrieval_images', 0))} images,"
         f" {int(m.get('retrieval_distinct_texts', 0))} distinct captions)"),
        ("captions BLEU-4 / CIDEr", f"{num('bleu4')} / {num('cider')}"),
        ("wall time", f"{sys.argv[2]} s")]
print("  " + "-" * 60)
for name, value in rows:
    print(f"  {name:<25} {value}")
print("  " + "-" * 60)
PYEOF
echo "  config:       $RUN/config.yaml"
echo "  metrics:      $RUN/metrics.jsonl"
echo "  plots:        $plots"
echo "  checkpoints:  $RUN/checkpoints/"
echo "  eval results: $RUN/eval_results.json"
echo "  export:       $RUN/export/"
