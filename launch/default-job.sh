#!/usr/bin/env bash
# The README's main command: set up (idempotent), then the main job on the embedded default
# model: fine-tune all-MiniLM-L6-v2 on STS-B train with the AnglE recipe of jobs/stsb.ini
# (1 epoch on CPU, about two minutes on 2 cores), evaluating on STS-B dev and test.
# Extra arguments override job keys, e.g. launch/default-job.sh --train.epochs 5
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
exec "${ANGLE_BUILD_DIR:-build}/angle" train --job jobs/stsb.ini "$@"
