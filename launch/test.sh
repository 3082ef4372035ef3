#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, run every CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
ctest --test-dir "${ANGLE_BUILD_DIR:-build}" --output-on-failure -j1 "$@"
