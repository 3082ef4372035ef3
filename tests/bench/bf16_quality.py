#!/usr/bin/env python3
"""bf16 sharded training against fp32: one epoch of the default job (jobs/stsb.ini: MiniLM, STS-B
train, seed 42) with shard.param_dtype = reduce_dtype = fp32 and = bf16, each scored on STS-B
dev and test; prints both scores, the largest and mean relative gap of the logged losses, and
the training throughput of each. Goal: test Spearman within 0.3 of fp32.

  python3 tests/bench/bf16_quality.py [--stage 2] [--ranks 1]"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--stage', type=int, default=2)
    ap.add_argument('--ranks', type=int, default=1)
    args = ap.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ('fp32', 'bf16'):
            out = pathlib.Path(tmp) / dtype
            cmd = (['mpirun', '-np', str(args.ranks)] if args.ranks > 1 else []) + [
                args.angle, 'train', '--job', 'jobs/stsb.ini', '--shard.stage', str(args.stage),
                '--shard.param_dtype', dtype, '--shard.reduce_dtype', dtype, '--run.output_dir', str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            if proc.returncode != 0:
                sys.exit(proc.stderr[-3000:])
            lines = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
            result = json.loads((out / 'eval.json').read_text())
            runs[dtype] = (lines, result['best']['dev']['spearman'], result['final']['test']['spearman'],
                           sum(l['pairs_per_s'] for l in lines[1:]) / max(1, len(lines) - 1))
    gaps = [abs(a['loss'] - b['loss']) / abs(a['loss']) for a, b in zip(runs['fp32'][0], runs['bf16'][0])]
    print(f'machine: {machine()}; stage {args.stage}, {args.ranks} rank(s)')
    for dtype, (_, dev, test, speed) in runs.items():
        print(f'  {dtype}: STS-B dev {dev:.2f}, test {test:.2f}, {speed:.1f} pairs/s')
    print(f'  bf16 - fp32 test Spearman {runs["bf16"][2] - runs["fp32"][2]:+.3f} (goal: within 0.3); logged losses: '
          f'largest relative gap {max(gaps):.2e}, mean {sum(gaps) / len(gaps):.2e} over {len(gaps)} points')


if __name__ == '__main__':
    main()
