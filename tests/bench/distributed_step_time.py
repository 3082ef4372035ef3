#!/usr/bin/env python3
"""Step time of the default job (all-MiniLM-L6-v2, STS-B train, global batch 32, max length 128)
on this node: 2 ranks x 1 thread (mpirun, MPI backend) against 1 rank x 2 threads, the time spent
in collectives (including the sharded optimizer step) and the ratio.

  python3 tests/bench/distributed_step_time.py [--steps 12] [--skip 2]"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(cmd, env):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--steps', type=int, default=12)
    ap.add_argument('--skip', type=int, default=2, help='warm-up steps left out')
    args = ap.parse_args()
    job = ['train', '--job', 'jobs/stsb.ini', '--data.dev', '', '--data.test', '', '--train.max_steps', args.steps,
           '--train.log_every', 1, '--model.dropout', 0]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, prefix, threads in (('1 rank x 2 threads', [], 2),
                                      ('2 ranks x 1 thread', ['mpirun', '-np', '2', '-x', 'OMP_NUM_THREADS'], 1)):
            out = pathlib.Path(tmp) / name.replace(' ', '')
            run(prefix + [args.angle] + job + ['--train.threads', threads, '--run.output_dir', out],
                dict(env, OMP_NUM_THREADS=str(threads)))
            lines = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
            timed = lines[args.skip:]
            step_s = sum(32 / l['pairs_per_s'] for l in timed) / len(timed)
            comm_s = sum(l['comm_s'] for l in timed) / len(timed)
            results[name] = (step_s, comm_s)
    print(f'default job, global batch 32, max length 128, steps {args.skip + 1}..{args.steps}')
    for name, (step_s, comm_s) in results.items():
        print(f'  {name:20s} {step_s * 1000:8.1f} ms/step, collectives {comm_s * 1000:7.1f} ms/step')
    a, b = results['2 ranks x 1 thread'][0], results['1 rank x 2 threads'][0]
    print(f'  ratio (2x1 / 1x2)    {a / b:8.3f} (goal: within 5%)')


if __name__ == '__main__':
    main()
