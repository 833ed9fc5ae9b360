#!/usr/bin/env bash
# Installs every missing Debian package the project needs (as root), then configures and
# builds into build/. Idempotent: a second run installs nothing and rebuilds only what
# changed. Not root and packages missing: prints the exact apt-get command and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev libopenblas0-pthread libtcmalloc-minimal4
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libsentencepiece-dev sentencepiece libopencv-dev libarchive-dev libgtest-dev zlib1g-dev
  python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root:  $cmd" >&2
    exit 2
  fi
  echo "[setup] installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${COCA_BUILD_DIR:-build}
JOBS=${COCA_JOBS:-$(nproc)}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${COCA_BUILD_TYPE:-Release}" ${COCA_CMAKE_ARGS:-}
fi
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "[setup] build ready in $BUILD_DIR ($(( $(date +%s) - start )) s)"
