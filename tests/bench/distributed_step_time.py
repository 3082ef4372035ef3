#!/usr/bin/env python3
"""Step time of the default job (all-MiniLM-L6-v2, STS-B train, global batch 32, max length 128)
on this node, per sharding stage: 2 ranks x 1 thread (mpirun, MPI backend) against unsharded
1 rank x 2 threads, with the exposed collective time per step (time a rank spent blocked on
collectives, `comm_wait_s`: what overlap did not hide) and the ratio. With --vs OLD/angle, every
configuration runs with both builds in the same rounds, each build's ratios against its own
1-rank run. Prints the machine.

  python3 tests/bench/distributed_step_time.py [--steps 12] [--skip 2] [--stages 1,2,3] [--repeat 3] [--set KEY=VALUE]
      [--vs OLD/angle]"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(cmd, env):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    flags = next((l.split(':', 1)[1].split() for l in open('/proc/cpuinfo') if l.startswith('flags')), [])
    isa = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    return f'{cpu}, {os.cpu_count()} cores, {" ".join(isa)}'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--steps', type=int, default=12)
    ap.add_argument('--skip', type=int, default=2, help='warm-up steps left out')
    ap.add_argument('--stages', default='1,2,3')
    ap.add_argument('--repeat', type=int, default=3, help='rounds over all configurations (the best of each is kept)')
    ap.add_argument('--set', action='append', default=[], help='extra job override KEY=VALUE (e.g. shard.inflight_mb=64)')
    ap.add_argument('--vs', default=None, help='another build of angle, run in the same rounds')
    args = ap.parse_args()
    builds = [('', args.angle)] + ([('old: ', args.vs)] if args.vs else [])
    job = ['train', '--job', 'jobs/stsb.ini', '--data.dev', '', '--data.test', '', '--train.max_steps', args.steps,
           '--train.log_every', 1, '--model.dropout', 0]
    for kv in args.set:
        key, value = kv.split('=', 1)
        job += [f'--{key}', value]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
    configs = [('1 rank x 2 threads', [], 2, 1)]
    configs += [(f'2 ranks x 1 thread, stage {s}', ['mpirun', '-np', '2', '-x', 'OMP_NUM_THREADS'], 1, int(s))
                for s in args.stages.split(',')]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):  # interleaved, so that a slow spell of the machine hits every configuration
            for (tag, binary), (config, prefix, threads, stage) in [(b, c) for c in configs for b in builds]:
                name = tag + config
                out = pathlib.Path(tmp) / f'run{round_}-{stage}-{threads}-{len(tag)}'
                run(prefix + [binary] + job + ['--train.threads', threads, '--shard.stage', stage,
                                               '--run.output_dir', out], dict(env, OMP_NUM_THREADS=str(threads)))
                lines = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
                timed = lines[args.skip:]
                step_s = sum(32 / l['pairs_per_s'] for l in timed) / len(timed)
                wait_s = sum(l['comm_wait_s'] for l in timed) / len(timed)
                print(f'  round {round_ + 1}: {name:32s} {step_s * 1000:8.1f} ms/step, exposed collectives '
                      f'{wait_s * 1000:7.1f} ms/step', flush=True)
                if name not in results or step_s < results[name][0]:
                    results[name] = (step_s, wait_s)
    print(f'machine: {machine()}')
    print(f'default job, global batch 32, max length 128, steps {args.skip + 1}..{args.steps}, best of {args.repeat}')
    for name, (step_s, wait_s) in sorted(results.items(), key=lambda kv: kv[0].startswith('old: ')):
        tag = 'old: ' if name.startswith('old: ') else ''
        base = results[tag + '1 rank x 2 threads'][0]
        ratio = '' if name.endswith('1 rank x 2 threads') else f', ratio {step_s / base:6.3f}'
        print(f'  {name:37s} {step_s * 1000:8.1f} ms/step, exposed collectives {wait_s * 1000:6.1f} ms/step{ratio}')
    print('  (goal: stage 2 within 1.05, stage 3 within 1.10 of 1 rank x 2 threads)')


if __name__ == '__main__':
    main()
