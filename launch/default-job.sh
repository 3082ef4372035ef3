#!/usr/bin/env bash
# The README's main command: set up (idempotent), then the main job on the embedded default
# model: fine-tune all-MiniLM-L6-v2 on STS-B + SICK train with the AnglE objective
# (jobs/default.ini, 1 epoch), evaluating on STS-B dev and test; its last line gives the base
# model's STS-B test Spearman beside the trained one's. The AnglE reference's STS-B-only recipe is
# jobs/stsb.ini.
# Extra arguments override job keys, e.g. launch/default-job.sh --train.epochs 2
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
exec "${ANGLE_BUILD_DIR:-build}/angle" train --job jobs/default.ini "$@"
