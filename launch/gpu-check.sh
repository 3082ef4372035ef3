#!/usr/bin/env bash
# The NCCL/CUDA checks, for a machine with an NVIDIA GPU (run after launch/setup.sh there, or with
# a build/ and models/ carried over). Exits 77 (CTest: skipped) where no CUDA device is usable.
#   1. the collective tests (every dtype, uneven all-gather, reduce-scatter, reduce, asynchronous
#      work, bf16, gathered loss gradients) on the NCCL backend with CUDA tensors, 1 rank;
#   2. 5 training steps of the default job on the CPU, and on CUDA over NCCL with shard.stage 1, 2
#      and 3: per-step losses must agree within 1e-3 relative;
#   3. a BERT-base-sized model (build/test-work/bert-base, made by tests/oracle/make_bert_base.py)
#      trained in bf16 (stage 3, param and reduce dtype bf16, global batch 64, max length 128):
#      sequences/s and model FLOP utilisation against the card's dense bf16 peak (vendor figure).
# Prints PASS/FAIL per check and exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ANGLE_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP: no NVIDIA GPU on this machine"
  exit 77
fi
nvidia-smi -L
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
status=0
echo "== 1. NCCL collectives (1 rank, CUDA tensors)"
if ANGLE_TEST_BACKEND=nccl mpirun -np 1 "$BUILD/tests/angle_mpi_tests"; then echo "PASS nccl collectives"; else echo "FAIL nccl collectives"; status=1; fi

echo "== 2. CUDA (NCCL, stages 1-3) vs CPU losses"
out=$(mktemp -d)
common=(train --job jobs/stsb.ini --data.dev "" --data.test "" --train.max_steps 5 --train.log_every 1
        --model.dropout 0 --model.max_length 32 --train.global_batch 8)
"$BUILD/angle" "${common[@]}" --train.device cpu --train.backend single --run.output_dir "$out/cpu" 2>/dev/null
for stage in 1 2 3; do
  mpirun -np 1 "$BUILD/angle" "${common[@]}" --train.device cuda --train.backend nccl --shard.stage $stage \
         --run.output_dir "$out/cuda-$stage" 2>/dev/null
done
if python3 - "$out" <<'PY'
import json, sys
read = lambda d: [json.loads(l)['loss'] for l in open(f'{sys.argv[1]}/{d}/metrics.jsonl') if '"loss"' in l]
cpu, ok = read('cpu'), True
print('cpu         ', cpu)
for stage in (1, 2, 3):
    cuda = read(f'cuda-{stage}')
    worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, cuda))
    print(f'cuda stage {stage}', cuda, f'worst relative difference {worst:.2e} (limit 1e-3)')
    ok = ok and worst <= 1e-3 and len(cuda) == len(cpu) == 5
sys.exit(0 if ok else 1)
PY
then echo "PASS cuda training (stages 1-3) matches cpu"; else echo "FAIL cuda training vs cpu"; status=1; fi

echo "== 3. BERT-base-sized bf16 training throughput on $gpu"
model=$BUILD/test-work/bert-base
[ -f "$model/DONE" ] || python3 tests/oracle/make_bert_base.py --tokenizer-from models/all-MiniLM-L6-v2 --out "$model"
mpirun -np 1 "$BUILD/angle" train --job jobs/stsb.ini --data.dev "" --data.test "" --model.path "$model" \
       --model.pooling mean --model.max_length 128 --train.global_batch 64 --train.max_steps 30 --train.log_every 10 \
       --train.device cuda --train.backend nccl --shard.stage 3 --shard.param_dtype bf16 --shard.reduce_dtype bf16 \
       --run.output_dir "$out/bert-base" 2>/dev/null
if python3 - "$out/bert-base" "$gpu" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(f'{sys.argv[1]}/metrics.jsonl') if '"loss"' in l][1:]  # first 10 steps: warm-up
pairs = sum(l['pairs_per_s'] for l in lines) / len(lines)
flops = sum(l['model_flops_per_s'] for l in lines) / len(lines)
name = sys.argv[2]
# Dense bf16 peaks from the vendors' data sheets (TFLOP/s, without sparsity).
peaks = {'H200': 989, 'H100 SXM': 989, 'H100 80GB HBM3': 989, 'H100 NVL': 835, 'H100 PCIe': 756, 'A100': 312, 'L40S': 362}
peak = next((v for k, v in peaks.items() if k in name), None)
mfu = f'{100 * flops / (peak * 1e12):.1f}% of {peak} TFLOP/s' if peak else 'peak unknown for this card'
print(f'{name}: {2 * pairs:.1f} sequences/s ({pairs:.1f} pairs/s), {flops / 1e12:.2f} model TFLOP/s, MFU {mfu}')
sys.exit(0 if pairs > 0 else 1)
PY
then echo "PASS bert-base bf16 throughput measured"; else echo "FAIL bert-base bf16 run"; status=1; fi
exit $status
