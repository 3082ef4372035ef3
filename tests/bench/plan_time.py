#!/usr/bin/env python3
"""`angle plan`'s step-time model against measured step times (CPU, MPI, 1 thread per rank): the
MiniLM job on STS-B (global batch 8, max length 32, dropout 0, stage 2), calibrated on this machine
with `mpirun -np 2 angle plan --calibrate`, then for N = 1, 2, 4 the plan's predicted step time
beside the measured one: the wall-clock difference of two whole runs of 3 and 13 steps, / 10
(outside the program's own clock; start-up and the last evaluation cancel out).

  python3 tests/bench/plan_time.py      (~2 minutes)"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/bench'))
from distributed_step_time import machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--work', default=str(ROOT / 'checkpoints/plan-time'))
    args = ap.parse_args()
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    job = ['--job', 'jobs/stsb.ini', '--data.dev', '', '--data.test', '', '--model.max_length', '32',
           '--train.global_batch', '8', '--model.dropout', '0', '--train.threads', '1']
    machine_file = work / 'machine.json'

    def run(cmd):
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        return proc.stdout

    print(f'machine: {machine()}; 1 thread per rank')
    print(run(['mpirun', '--oversubscribe', '-np', 2, args.angle, 'plan', *job, '--calibrate', machine_file]).strip())
    print(f'{"ranks":>5s} {"predicted s/step":>17s} {"measured s/step":>16s} {"gap":>7s}')
    for n in (1, 2, 4):
        plan = json.loads(run([args.angle, 'plan', *job, '--ranks', n, '--machine', machine_file, '--json']))
        walls = {}
        for steps in (3, 13):
            start = time.perf_counter()
            run(['mpirun', '--oversubscribe', '-np', n, args.angle, 'train', *job, '--train.max_steps', steps,
                 '--run.output_dir', work / f'n{n}-{steps}'])
            walls[steps] = time.perf_counter() - start
        measured = (walls[13] - walls[3]) / 10
        predicted = plan['time']['step_s']
        print(f'{n:5d} {predicted:17.3f} {measured:16.3f} {(predicted - measured) / measured:+7.0%}', flush=True)


if __name__ == '__main__':
    main()
