#!/usr/bin/env bash
# Sets up (tools/setup.sh), then runs the whole GoogleTest suite through ctest.
# The exit code is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${COCA_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${COCA_TEST_JOBS:-2}" "$@"
