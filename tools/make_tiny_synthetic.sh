#!/usr/bin/env bash
# Writes data/tiny_synthetic/spm.model, the tokenizer of configs/pretrain/tiny_synthetic.yaml:
# a 48-piece SentencePiece model trained on the captions and class names of a few
# synthetic samples (coca data synth). Usage: bash tools/make_tiny_synthetic.sh [coca binary]
set -euo pipefail
cd "$(dirname "$0")/.."
COCA=${1:-${COCA_BUILD_DIR:-build}/src/cli/coca}
OUT=data/tiny_synthetic
mkdir -p "$OUT"
"$COCA" data synth --out "$OUT/shards" --samples 512 --size 32 --shard-size 512 > /dev/null
rm -rf "$OUT/extract" && mkdir -p "$OUT/extract"
tar -xf "$OUT/shards/train-00000.tar" -C "$OUT/extract" --wildcards '*.txt'
find "$OUT/extract" -name '*.txt' -exec sh -c 'for f; do cat "$f"; echo; done' _ {} + > "$OUT/text.txt"
cut -f2 "$OUT/shards/classes.txt" | sed 's/^/a photo of the /' >> "$OUT/text.txt"
rm -rf "$OUT/extract"
"$COCA" tokenizer train --text "$OUT/text.txt" --vocab-size 48 --out "$OUT/spm"
echo "wrote $OUT/spm.model"
