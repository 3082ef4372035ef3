#!/usr/bin/env python3
"""Step time of one or more `angle` builds on the main job's data (jobs/default.ini without dev/test
evaluation, 1 rank): each build runs 5 and 35 steps, and s/step = (wall time of 35 - of 5) / 30,
with the minor page faults per step of the same difference. Wall time and faults are measured from
outside (the child's rusage); the forward/backward/optimizer times beside them are the run's own
profile (eval.json). Rounds interleave the builds. Used for README "What made the CPU step faster":
build the old revision elsewhere and pass both binaries.

  python3 tests/bench/step_time_ab.py OLD/angle build/angle [--rounds 2] [--threads 2]"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from distributed_step_time import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(binary, steps, threads, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    start = time.perf_counter()
    proc = subprocess.run([binary, 'train', '--job', 'jobs/default.ini', '--data.dev', '', '--data.test', '',
                           '--train.max_steps', str(steps), '--train.threads', str(threads), '--run.output_dir', out],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('binaries', nargs='+')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    print(f'machine: {machine()}; {args.threads} threads, jobs/default.ini, steps 6..35')
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            for binary in args.binaries:
                short, short_faults = run(binary, 5, args.threads, f'{tmp}/short')
                long, long_faults = run(binary, 35, args.threads, f'{tmp}/long')
                phases = json.loads(pathlib.Path(f'{tmp}/long/eval.json').read_text())['profile']['phases']
                per_step = {k: phases[k]['wall_s'] / 35 * 1000 for k in ('forward', 'backward', 'optimizer')}
                print(f'round {round_} {binary}: {(long - short) / 30:.3f} s/step, {30 * 32 / (long - short):.1f} pairs/s, '
                      f'{(long_faults - short_faults) / 30:.0f} page faults/step; own profile, ms/step: forward '
                      f'{per_step["forward"]:.0f}, backward {per_step["backward"]:.0f}, optimizer {per_step["optimizer"]:.0f}',
                      flush=True)


if __name__ == '__main__':
    main()
