#!/usr/bin/env bash
# Sets up (tools/setup.sh), then runs the main job on the embedded default data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${COCA_BUILD_DIR:-build}
COCA="$BUILD_DIR/src/cli/coca"
"$COCA" --version
echo "[demo] resolved demo config (configs/pretrain/demo.yaml):"
"$COCA" train --config configs/pretrain/demo.yaml --print-config
