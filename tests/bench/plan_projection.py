#!/usr/bin/env python3
"""The README's projection table: `angle plan --project` for a BERT-base model (full fine-tuning)
and LLaMA-2-7B with LoRA rank 16 on 8, 64 and 512 H100-class GPUs, 8 per node, stages 2 and 3,
sharded over every GPU (FSDP) and, past one node, inside each node with one replica per node
(HSDP: shard.replicate node), bf16, with gradient caching (BERT-base: global batch 4096 pairs of 128 tokens, chunks of 128;
LLaMA: 2048 pairs of 512 tokens, chunks of 4).
Every machine figure is an assumption from NVIDIA's H100 SXM data sheet, stated here: bf16 dense
989 TFLOP/s peak, of which 40% achieved (--flops 3.96e14); HBM3 3.35 TB/s; NVLink 4 900 GB/s
per GPU both directions (450 each way) within a node; one ConnectX-7 NDR InfiniBand port per GPU,
400 Gb/s (50 GB/s each way) across nodes; 5 us per message; 80 GB per GPU of which 2 GB are taken
by the CUDA context and NCCL buffers. The global batch stays the same at every size (strong
scaling); an epoch is 1 M examples. Sanity columns: ZeRO's 16Ψ/N model-state bytes for full
fine-tuning at stage 3 (Rajbhandari et al. 2020, §3); for LoRA the frozen 16-bit weights, 2Ψ_frozen
whole at stage 2 (Hu et al. 2021, §4.2: GPT-3 175B trained in 350 GB, 2 bytes per parameter) and
2Ψ_frozen/N at stage 3.

  python3 tests/bench/plan_projection.py [--angle build/angle]   (seconds)"""
import argparse
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
MACHINE = ['--flops', 3.96e14, '--hbm', 3350, '--link', 'intra=450,inter=50,latency=5', '--per-node', 8,
           '--reserve-gb', 2, '--memory-gb', 80, '--examples', 1_000_000, '--dtype', 'bf16']
MODELS = [('BERT-base, full', ROOT / 'jobs/plan/bert-base-uncased.config.json',
           ['--global-batch', 4096, '--tokens', 128, '--chunk', 128]),
          ('LLaMA-2-7B, LoRA r=16', ROOT / 'jobs/plan/llama-2-7b.config.json',
           ['--lora', 16, '--global-batch', 2048, '--tokens', 512, '--chunk', 4])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    args = ap.parse_args()
    print('| model | stage | sharding | GPUs | model state / GPU | sanity | peak / GPU (fits 80 GB) | step | comm. exposed '
          '| epoch (1 M examples) | scaling efficiency |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    runs = [(m, s, n, r) for m in MODELS for s in (2, 3) for n in (8, 64, 512) for r in ('1', 'node')
            if r == '1' or n > 8]
    for (label, config, workload), stage, n, replicate in runs:
        cmd = [args.angle, 'plan', '--project', config, '--ranks', n, '--stage', stage, '--replicate', replicate,
               *MACHINE, *workload, '--json']
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True)
        p = json.loads(proc.stdout)
        gb = 1e9
        state, peak, t = p['state_bytes']['total'], p['peak_bytes']['total'], p['time']
        if p['frozen_parameters']:
            shards = (n if replicate == '1' else 8) if stage == 3 else 1
            sanity = f'2Ψ_frozen{"/N" if stage == 3 else ""} = {2 * p["frozen_parameters"] / shards / gb:.2f} GB'
        else:
            sanity = f'16Ψ/N = {16 * p["parameters"] / n / gb:.3f} GB' if stage == 3 and replicate == '1' else ''
        sharding = 'FSDP' if replicate == '1' else 'HSDP (node)'
        print(f'| {label} | {stage} | {sharding} | {n} | {state / gb:.3f} GB | {sanity} | {peak / gb:.1f} GB '
              f'({"yes" if p["fits"] else "no"}) | {t["step_s"]:.3f} s | {t["exposed_comm_s"]:.3f} s '
              f'| {t["epoch_s"] / 60:.1f} min | {100 * t["scaling_efficiency"]:.0f}% |')


if __name__ == '__main__':
    main()
