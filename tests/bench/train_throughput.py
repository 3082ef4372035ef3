#!/usr/bin/env python3
"""Training pairs/s of `angle train` and of angle-emb 0.6.1 (AnglE.fit) on STS-B train, same
machine, model (all-MiniLM-L6-v2), batch (32 pairs), max length (128), threads and recipe. Each
side is run for --short and --long steps and timed end to end; the difference cancels start-up
(loading, tokenisation, torch.compile set-up), so pairs/s = (long - short) * batch / time difference.

  python3 tests/bench/train_throughput.py [--threads 2] [--short 5] [--long 35]"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def timed(cmd, env):
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--train', default=str(ROOT / 'data/STS/STSBenchmark/sts-train.csv'))
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--short', type=int, default=5)
    ap.add_argument('--long', type=int, default=35)
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        def ours(steps):
            return timed([args.angle, 'train', '--job', 'jobs/stsb.ini', '--model.path', args.model, '--data.train',
                          f'stsb:{args.train}', '--data.dev', '', '--data.test', '', '--train.max_steps', steps,
                          '--train.global_batch', args.batch, '--train.threads', args.threads,
                          '--run.output_dir', f'{tmp}/ours-{steps}'], env)

        def reference(steps):
            return timed([sys.executable, ROOT / 'tests/bench/angle_emb_run.py', '--model', args.model, '--train',
                          args.train, '--output', f'{tmp}/ref-{steps}', '--max-steps', steps, '--batch-size',
                          args.batch, '--threads', args.threads], env)

        for name, run in (('angle train', ours), ('angle-emb 0.6.1', reference)):
            short, long = run(args.short), run(args.long)
            results[name] = (args.long - args.short) * args.batch / (long - short)
    print(f'training on STS-B train, all-MiniLM-L6-v2, batch {args.batch} pairs, max length 128, '
          f'{args.threads} threads, fp32, steps {args.short + 1}..{args.long}')
    for name, rate in results.items():
        print(f'  {name:18s} {rate:8.1f} pairs/s')
    print(f'  ratio              {results["angle train"] / results["angle-emb 0.6.1"]:8.2f}x')


if __name__ == '__main__':
    main()
