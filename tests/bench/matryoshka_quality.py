#!/usr/bin/env python3
"""Matryoshka quality: one epoch of jobs/stsb.ini (all-MiniLM-L6-v2 on STS-B train) trained as it is
and with loss.matryoshka_dims 384,128,64, each final model (and the base model) scored on STS-B test
with its embeddings cut to 384, 256, 128, 64 and 32 dimensions (`angle eval --dim D`). Goal: at 64
dimensions the Matryoshka model loses less Spearman against its own 384 than the plain one does.

  python3 tests/bench/matryoshka_quality.py [--seeds 42,43,44] [--dims 384,128,64]"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CUTS = (384, 256, 128, 64, 32)


def run(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'failed: {" ".join(map(str, cmd))}\n{proc.stderr[-3000:]}')
    return proc.stdout


def test_spearman(angle, model, dim):
    out = run([angle, 'eval', '--model', model, '--data', 'stsb:data/STS/STSBenchmark/sts-test.csv', '--dim', dim,
               '--json', '--quiet'])
    return json.loads(out.splitlines()[0])['spearman']


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--seeds', default='42')
    ap.add_argument('--dims', default='384,128,64')
    args = ap.parse_args()
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    scores = {'base': {d: test_spearman(args.angle, 'models/all-MiniLM-L6-v2', d) for d in CUTS}}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds.split(','):
            for name, extra in (('plain', []), ('matryoshka', ['--loss.matryoshka_dims', args.dims])):
                out = pathlib.Path(tmp) / f'{name}-{seed}'
                run([args.angle, 'train', '--job', 'jobs/stsb.ini', '--train.seed', seed, '--run.output_dir', out,
                     *extra])
                scores[f'{name} seed {seed}'] = {d: test_spearman(args.angle, out / 'final', d) for d in CUTS}
                print(f'{name} seed {seed}: ' + ', '.join(f'{d}: {s:.2f}' for d, s in scores[f"{name} seed {seed}"].items()),
                      flush=True)
    print(f'\nmachine: {machine()}; {time.time() - start:.0f} s of training and scoring')
    print('STS-B test Spearman x 100 by embedding size (loss against the same model at 384 in brackets)')
    print(f'{"model":<24}' + ''.join(f'{d:>16}' for d in CUTS))
    for name, row in scores.items():
        print(f'{name:<24}' + ''.join(f'{row[d]:>8.2f} ({row[d] - row[384]:+5.2f})' for d in CUTS))
    seeds = args.seeds.split(',')
    for d in CUTS[1:]:
        drop = {kind: sum(scores[f'{kind} seed {s}'][d] - scores[f'{kind} seed {s}'][384] for s in seeds) / len(seeds)
                for kind in ('plain', 'matryoshka')}
        print(f'at {d}: mean change against 384: plain {drop["plain"]:+.2f}, matryoshka {drop["matryoshka"]:+.2f}')


if __name__ == '__main__':
    main()
