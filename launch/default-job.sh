#!/usr/bin/env bash
# The README's main command: set up (idempotent), then the main job on the embedded default
# model (all-MiniLM-L6-v2): embed and evaluate STS-B test and SICK-R test.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
exec "${ANGLE_BUILD_DIR:-build}/angle" eval --model models/all-MiniLM-L6-v2 \
  --data stsb:data/STS/STSBenchmark/sts-test.csv \
  --data sick:data/SICK/semeval2014_task1_noheader/SICK_test_annotated.txt "$@"
