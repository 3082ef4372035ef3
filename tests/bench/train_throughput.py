#!/usr/bin/env python3
"""Training pairs/s of `angle train` beside its Python peers, on this machine in one run: angle-emb
0.6.1 (AnglE.fit, the same AnglE recipe) and sentence-transformers (its trainer with CoSENTLoss).
Same data (the main job's: STS-B + SICK train), model (all-MiniLM-L6-v2), batch (32 pairs), max
length (128), threads and dtype. Each side runs --short and --long steps, timed end to end; the
difference cancels start-up (loading, tokenisation), so pairs/s = (long - short) * batch / time
difference; best of --repeats. Prints the machine beside the figures.

  python3 tests/bench/train_throughput.py [--threads 2] [--short 5] [--long 35] [--repeats 1] [--bf16]"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def timed(cmd, env):
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(' '.join(map(str, cmd)) + '\n' + proc.stderr[-3000:])
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--model', default=str(ROOT / 'models/all-MiniLM-L6-v2'))
    ap.add_argument('--data', default=str(ROOT / 'data'))
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--short', type=int, default=5)
    ap.add_argument('--long', type=int, default=35)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--bf16', action='store_true', help='bf16 autocast on every side (model.dtype bf16, trainers bf16=True)')
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    common = ['--model', args.model, '--batch-size', args.batch, '--threads', args.threads] + (['--bf16'] if args.bf16 else [])
    with tempfile.TemporaryDirectory() as tmp:
        def ours(steps):
            return [args.angle, 'train', '--job', 'jobs/default.ini', '--model.path', args.model, '--data.train',
                    f'stsb:{args.data}/STS/STSBenchmark/sts-train.csv,'
                    f'sick:{args.data}/SICK/semeval2014_task1_noheader/SICK_train.txt',
                    '--data.dev', '', '--data.test', '', '--train.max_steps', steps, '--train.global_batch', args.batch,
                    '--train.threads', args.threads, '--model.dtype', 'bf16' if args.bf16 else 'fp32',
                    '--run.output_dir', f'{tmp}/ours-{steps}-{time.perf_counter()}']

        def angle_emb(steps):
            return [sys.executable, ROOT / 'tests/bench/angle_emb_run.py', '--default-job-data', args.data,
                    '--output', f'{tmp}/angle-emb', '--max-steps', steps, *common]

        def sentence_transformers(steps):
            return [sys.executable, ROOT / 'tests/bench/st_fit_run.py', '--data', args.data, '--output', f'{tmp}/st',
                    '--max-steps', steps, *common]

        sides = {'angle train': ours, 'angle-emb 0.6.1': angle_emb, 'sentence-transformers': sentence_transformers}
        rates = {name: 0.0 for name in sides}
        for _ in range(args.repeats):
            for name, command in sides.items():
                short, long = timed(command(args.short), env), timed(command(args.long), env)
                rates[name] = max(rates[name], (args.long - args.short) * args.batch / (long - short))
    import torch
    import sentence_transformers as st
    print(f'machine: {machine()}; torch {torch.__version__}, sentence-transformers {st.__version__}')
    print(f'training on STS-B + SICK train (jobs/default.ini), all-MiniLM-L6-v2, batch {args.batch} pairs, max length '
          f'128, {args.threads} threads, {"bf16 autocast" if args.bf16 else "fp32"}, steps {args.short + 1}..{args.long}, '
          f'best of {args.repeats}')
    for name, rate in rates.items():
        ratio = '' if name == 'angle train' else f'   angle train / this: {rates["angle train"] / rate:.2f}x'
        print(f'  {name:22s} {rate:8.1f} pairs/s{ratio}')


if __name__ == '__main__':
    main()
