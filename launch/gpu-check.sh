#!/usr/bin/env bash
# The NCCL/CUDA checks, for a machine with an NVIDIA GPU (run after launch/setup.sh there):
#   1. the collective tests (all dtypes, uneven all-gather, reduce-scatter, broadcast, gathered
#      loss gradients) on the NCCL backend with CUDA tensors, 1 rank;
#   2. 5 training steps of the default job on CUDA (NCCL backend) and on the CPU: per-step losses
#      must agree within 1e-3 relative.
# Prints PASS/FAIL per check and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ANGLE_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
command -v nvidia-smi >/dev/null && nvidia-smi -L
status=0
echo "== NCCL collectives (1 rank, CUDA tensors)"
if ANGLE_TEST_BACKEND=nccl mpirun -np 1 "$BUILD/tests/angle_mpi_tests"; then echo "PASS nccl collectives"; else echo "FAIL nccl collectives"; status=1; fi
out=$(mktemp -d)
common=(train --job jobs/stsb.ini --data.dev "" --data.test "" --train.max_steps 5 --train.log_every 1
        --model.dropout 0 --model.max_length 32 --train.global_batch 8)
"$BUILD/angle" "${common[@]}" --train.device cpu --train.backend single --run.output_dir "$out/cpu"
mpirun -np 1 "$BUILD/angle" "${common[@]}" --train.device cuda --train.backend nccl --run.output_dir "$out/cuda"
if python3 - "$out" <<'PY'
import json, sys
read = lambda d: [json.loads(l)['loss'] for l in open(f'{sys.argv[1]}/{d}/metrics.jsonl') if '"loss"' in l]
cpu, cuda = read('cpu'), read('cuda')
worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, cuda))
print('cpu ', cpu); print('cuda', cuda); print(f'worst relative difference {worst:.2e} (limit 1e-3)')
sys.exit(0 if worst <= 1e-3 and len(cpu) == len(cuda) == 5 else 1)
PY
then echo "PASS cuda training matches cpu"; else echo "FAIL cuda training vs cpu"; status=1; fi
exit $status
