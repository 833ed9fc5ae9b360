#!/usr/bin/env bash
# Writes the real-data recipe's WebDataset shards (configs/pretrain/real_small.yaml) from two
# Debian packages:
#   data/real/fashion_mnist/train-0000{0..5}.tar (60k), test-00000.tar (10k), classes.txt
#     Fashion-MNIST (dataset-fashion-mnist) as image-label data, its 10 class names;
#   data/real/tuxpaint/train-0000{0..3}.tar (707), val-00000.tar (78), classes.txt
#     the TuxPaint stamps (tuxpaint-stamps-default) as image-caption data: the English
#     caption of each PNG stamp, its top-level folder (animals, food, ...) as its label.
#     Held out: every 10th stamp by sorted path. SVG stamps (OpenCV cannot read them) and
#     the `_mirror` variants of PNG stamps are left out; transparent pixels are composited
#     onto white and stamps larger than 128 px shrunk (`coca data convert --alpha-background
#     255 --max-side 128`).
# Installs the packages when run as root; otherwise prints the apt-get command and exits 2.
# Idempotent: existing outputs are kept (delete data/real/<name>/ to redo one).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${COCA_BUILD_DIR:-build}
COCA=${COCA:-"$BUILD_DIR/src/cli/coca"}
OUT=${COCA_REAL_DATA:-data/real}
STAMPS=/usr/share/tuxpaint/stamps
FMNIST=/usr/share/datasets/fashion-mnist

missing=()
for p in dataset-fashion-mnist tuxpaint-stamps-default; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "prepare_real_data: missing Debian packages: ${missing[*]}" >&2
    echo "prepare_real_data: run as root:  $cmd" >&2
    exit 2
  fi
  echo "[real-data] installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Fashion-MNIST: the IDX files through configs/data/fashion_mnist.yaml -----------------
fm="$OUT/fashion_mnist"
if [[ ! -f "$fm/test-00000.tar" ]]; then
  echo "[real-data] Fashion-MNIST -> $fm"
  rm -rf "$fm"
  "$COCA" data convert --config configs/data/fashion_mnist.yaml --out "$fm" --prefix train \
    --shard-size 10000 --no-decode
  "$COCA" data convert --config configs/data/fashion_mnist.yaml --out "$fm" --prefix test \
    --shard-size 10000 --no-decode \
    --set "data.sources.0.path=$FMNIST/t10k-images-idx3-ubyte.gz" \
    --set "data.sources.0.labels_path=$FMNIST/t10k-labels-idx1-ubyte.gz"
fi

# --- TuxPaint stamps: a manifest (filepath, English caption, category), then convert -------
tp="$OUT/tuxpaint"
if [[ ! -f "$tp/val-00000.tar" ]]; then
  echo "[real-data] TuxPaint stamps -> $tp"
  rm -rf "$tp"
  mkdir -p "$tp"
  # A stamp is NAME.png with NAME.txt beside it; the .txt's English text is its one line
  # without a `<locale>.utf8=` prefix. The category is the first folder under $STAMPS.
  manifest="$tp/stamps.tsv"
  printf 'filepath\ttitle\tcategory\n' >"$manifest"
  no_text=0
  while IFS= read -r rel; do
    txt="$STAMPS/${rel%.png}.txt"
    if [[ ! -f "$txt" ]]; then
      no_text=$((no_text + 1))
      continue
    fi
    caption=$(grep -avE '^[A-Za-z_@-]+\.(utf8|UTF-8)=' "$txt" | head -n 1 | tr -d '\r\t' || true)
    if [[ -z "${caption// /}" ]]; then
      no_text=$((no_text + 1))
      continue
    fi
    # Quoted as in RFC 4180 so that a caption starting with '"' stays one field.
    printf '%s\t"%s"\t%s\n' "$rel" "${caption//\"/\"\"}" "${rel%%/*}" >>"$manifest"
  done < <(cd "$STAMPS" && find . -name '*.png' ! -name '*_mirror.png' -printf '%P\n' | LC_ALL=C sort)
  tail -n +2 "$manifest" | cut -f3 | LC_ALL=C sort -u >"$tp/categories.txt"
  # Every 10th stamp (by sorted path) is held out.
  head -n 1 "$manifest" | tee "$tp/train.tsv" >"$tp/val.tsv"
  tail -n +2 "$manifest" | awk -v train="$tp/train.tsv" -v val="$tp/val.tsv" \
    '{ if (NR % 10 == 0) print >> val; else print >> train }'
  echo "[real-data] $(($(wc -l <"$manifest") - 1)) PNG stamps with an English caption" \
    "($no_text without), $(wc -l <"$tp/categories.txt") categories; SVG stamps left out:" \
    "$(find "$STAMPS" -name '*.svg' | wc -l)"
  for split in train val; do
    "$COCA" data convert --config configs/data/tuxpaint.yaml --out "$tp" --prefix "$split" \
      --shard-size 200 --alpha-background 255 --max-side 128 \
      --set "data.sources.0.path=$tp/$split.tsv" \
      --set "data.sources.0.class_names=$tp/categories.txt"
  done
fi
echo "[real-data] shards:"
ls -1 "$fm"/*.tar "$fm/classes.txt" "$tp"/*.tar "$tp/classes.txt"
