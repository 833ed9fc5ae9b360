#!/usr/bin/env bash
# Interleaved rounds of `coca bench step` and open_clip v2.32.0's own CoCa step
# (tools/bench_open_clip_reference.py) on issue #9's two configurations, so that every
# ratio in the README's performance table comes from runs seconds apart on one machine.
#
#   git -C <open_clip mirror> archive v2.32.0 src/open_clip | tar -x -C /tmp/oc
#   tools/bench_vs_open_clip.sh /tmp/oc/src [rounds] [small|vit_b_32|both]
#
# Needs Debian's /usr/bin/python3 with python3-torch, python3-regex and python3-tqdm.
# Each round prints ms/step and peak RSS of: ours with AdamW, ours with Adafactor,
# open_clip (AdamW, glibc malloc, as it runs by default) and open_clip with the tcmalloc
# our binary preloads (to separate the allocator's share of the difference).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: tools/bench_vs_open_clip.sh OPEN_CLIP_SRC [rounds] [small|vit_b_32|both]}
ROUNDS=${2:-2}
WHICH=${3:-both}
COCA=${COCA_BUILD_DIR:-build}/src/cli/coca
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

configs=()
[[ $WHICH == small || $WHICH == both ]] && configs+=(small)
[[ $WHICH == vit_b_32 || $WHICH == both ]] && configs+=(vit_b_32)

ours() {  # config optimizer
  local steps=10 warmup=3
  [[ $1 == vit_b_32 ]] && steps=5 && warmup=2
  "$COCA" bench step -c "configs/bench/$1_open_clip.yaml" --steps $steps --warmup $warmup \
    --set "optim.name=$2" 2>&1 |
    awk '/^step/{ms=$3} /peak RSS/{rss=$4} /GEMM limit/{for(i=1;i<=NF;i++) if($i ~ /%$/) g=$i}
         END{printf "ms/step %s  peak RSS %s MiB  GEMM limit %s\n", ms, rss, g}'
}

theirs() {  # config [preload]
  local steps=10
  [[ $1 == vit_b_32 ]] && steps=6
  env ${2:+LD_PRELOAD=$2} /usr/bin/python3 tools/bench_open_clip_reference.py \
    --open-clip-src "$SRC" --config "$1" --steps $steps 2>&1 |
    awk '/^ms\/step/{ms=$3; for(i=1;i<=NF;i++) if($i=="RSS") rss=$(i+1)}
         END{printf "ms/step %s  peak RSS %s MiB\n", ms, rss}'
}

for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${configs[@]}"; do
    echo "round $r $c ours adamw:             $(ours "$c" adamw)"
    echo "round $r $c open_clip:              $(theirs "$c")"
    echo "round $r $c ours adafactor:         $(ours "$c" adafactor)"
    if [[ -r $TCMALLOC ]]; then
      echo "round $r $c open_clip + tcmalloc:   $(theirs "$c" "$TCMALLOC")"
    fi
  done
done
