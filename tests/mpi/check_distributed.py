#!/usr/bin/env python3
"""`mpirun -np N angle train` is the single-process run, only sharded:
  - world-size invariance: a tiny BERT (5 steps, global batch 8) at N = 1, 2, 4 gives per-step
    losses and final parameters equal within 1e-5 relative with dropout on (keyed by text:
    model/dropout.h; dropout 0 is in tests/hosts), also with gradient caching in chunks of 1 at N = 2; the
    default MiniLM job (dropout on) the same losses within 1e-4;
  - local_negatives at N = 2 differs from N = 1 and equals the mean of the two half-batch losses;
  - a global batch not divisible by N x grad_accum and job files that differ across ranks are
    errors before any work;
  - an error on one rank ends every rank within 10 s (mpirun's start and teardown included) with
    that rank's message, not after the watchdog's 300 s: a truncated checkpoint shard found by
    rank 0 (N = 2 and 4), and an error injected on rank 1 at start-up, mid-step and mid-save
    (no checkpoint left looking complete);
  - a rank that stops responding makes the others exit non-zero within the watchdog timeout,
    naming the stuck collective; a rank killed with -9 ends the job non-zero."""
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402
from runs import ROOT, final_params, losses, mpirun, param_distance, rel, short_job  # noqa: E402


def main():
    args, angle, work, expect = setup(__doc__, '--tiny', '--model', '--data-dir')
    failures = expect.failures
    common = short_job(args.data_dir)
    base = common + ['--train.max_steps', 5, '--train.global_batch', 8]

    tiny = ['--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64]
    for dropout, variants in ((0, ()), (0.1, ((2, []), (4, []), (2, ['--train.chunk', 1])))):
        out = work / f'tiny-1-dropout-{dropout}'
        mpirun(1, angle, base + tiny + ['--model.dropout', dropout, '--run.output_dir', out])
        single, single_params = losses(out), final_params(out)
        if dropout == 0:
            runs = {1: single}
        print(f'tiny BERT, dropout {dropout}, N=1 losses: {single}')
        for n, extra in variants:
            out = work / f'tiny-{n}-dropout-{dropout}{"-chunk" if extra else ""}'
            mpirun(n, angle, base + tiny + ['--model.dropout', dropout, '--run.output_dir', out] + extra)
            worst = max(rel(a, b) for a, b in zip(losses(out), single))
            worst_param = param_distance(final_params(out), single_params)
            label = f'dropout {dropout}, N={n} {" ".join(map(str, extra))}'
            print(f'{label}: worst relative loss difference {worst:.2e}, parameters {worst_param:.2e}')
            if worst > 1e-5 or worst_param > 1e-5:
                failures.append(f'tiny {label} differs from N=1: losses {worst:.2e}, parameters {worst_param:.2e}')
    # The comparison sees the masks: dropout on gives another step-1 loss than dropout 0.
    if rel(single[0], runs[1][0]) < 1e-4:
        failures.append(f'dropout on and off give the same step-1 loss {single[0]}: the masks are not applied')

    # local negatives: the step-1 loss is the mean of the losses of the two half batches, i.e.
    # of steps 1 and 2 of a single-process run with global batch 4 (same data order, lr ~ 0).
    frozen = common + ['--optim.lr', '1e-30', '--train.max_steps', 2, '--model.path', args.tiny, '--model.pooling', 'cls',
                       '--model.max_length', 64]
    out = work / 'local-2'
    mpirun(2, angle, frozen + ['--loss.local_negatives', 'true', '--train.global_batch', 8, '--run.output_dir', out])
    local = losses(out)[0]
    out = work / 'halves'
    mpirun(1, angle, frozen + ['--train.global_batch', 4, '--run.output_dir', out])
    halves = losses(out)
    print(f'local negatives N=2: {local:.7f}; halves {halves}; global N=1: {runs[1][0]:.7f}')
    if rel(local, (halves[0] + halves[1]) / 2) > 1e-5 or rel(local, runs[1][0]) < 1e-4:
        failures.append(f'local negatives: {local} vs mean of halves {(halves[0] + halves[1]) / 2}, global {runs[1][0]}')

    minilm = {}
    for n in (1, 2, 4):
        out = work / f'minilm-{n}'
        mpirun(n, angle, base + ['--model.path', args.model, '--model.max_length', 32, '--model.dropout', 0.1,
                                 '--run.output_dir', out])
        minilm[n] = losses(out)
    print('MiniLM losses by world size (dropout 0.1):', minilm)
    for n in (2, 4):
        worst = max(rel(a, b) for a, b in zip(minilm[n], minilm[1]))
        if worst > 1e-4:
            failures.append(f'MiniLM N={n} differs from N=1 by {worst:.2e}')

    # --- errors before any work ---
    def mpi_failure(label, n, extra, expected):
        proc = mpirun(n, angle, extra, check=False)
        errors = [l for l in proc.stderr.splitlines() if ': error: ' in l]
        ok = proc.returncode != 0 and errors and all(e in errors[0] for e in expected)
        print(f'[{"ok" if ok else "FAIL"}] {label}: rc={proc.returncode} {errors[:1]}')
        if not ok:
            failures.append(f'{label}: {proc.stderr[-500:]}')
    tiny = ['--model.path', args.tiny, '--model.pooling', 'cls']
    mpi_failure('global batch not divisible by N x grad_accum', 4, common + tiny + ['--train.global_batch', 6],
                ['global_batch 6', 'ranks x train.grad_accum = 4 x 1'])
    other = work / 'other.ini'
    other.write_text((ROOT / 'jobs/stsb.ini').read_text().replace('lr = 2e-5', 'lr = 3e-5'))
    cmd = ['mpirun', '-np', '1', str(angle), *map(str, base + tiny), ':', '-np', '1', str(angle), 'train', '--job',
           str(other), *map(str, base[3:] + tiny)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    ok = proc.returncode != 0 and 'runs a different job configuration than rank 0' in proc.stderr
    print(f'[{"ok" if ok else "FAIL"}] job files differ across ranks: rc={proc.returncode}')
    if not ok:
        failures.append(f'mismatched job files: {proc.stderr[-500:]}')

    # --- one rank's error ends every rank at once, with that rank's message (not the watchdog's) ---
    saved = work / 'saved-2'
    mpirun(2, angle, common + tiny + ['--train.max_steps', 2, '--train.global_batch', 8, '--run.checkpoint_every', 2,
                                      '--run.output_dir', saved])
    shard = saved / 'step-2' / 'shard-1-of-2.safetensors'
    shard.write_bytes(shard.read_bytes()[:-100])
    for n in (2, 4):
        start = time.time()
        proc = mpirun(n, angle, common + tiny + ['--train.max_steps', 4, '--train.global_batch', 8, '--run.output_dir',
                                                 work / f'resume-bad-{n}', '--run.resume', saved / 'step-2'], check=False)
        elapsed = time.time() - start
        ok = (proc.returncode != 0 and elapsed < 10 and 'rank 0: ' in proc.stderr and 'fails its checksum' in proc.stderr
              and 'watchdog' not in proc.stderr)
        print(f'[{"ok" if ok else "FAIL"}] truncated shard, N={n}: exit {proc.returncode} after {elapsed:.1f} s, '
              f'{[l for l in proc.stderr.splitlines() if "error" in l][:1]}')
        if not ok:
            failures.append(f'truncated shard N={n}: rc={proc.returncode}, {elapsed:.1f} s, {proc.stderr[-500:]}')

    # an error injected on rank 1 only (tests-only ANGLE_FAULT): at start-up, mid-step, mid-save
    for point in ('startup', 'step:2', 'save'):
        out = work / f'fault-{point.replace(":", "")}'
        start = time.time()
        proc = subprocess.run(['mpirun', '--oversubscribe', '-np', '2', '-x', f'ANGLE_FAULT=1:{point}', str(angle),
                               *map(str, common + tiny + ['--train.max_steps', 3, '--train.global_batch', 8,
                                                          '--run.checkpoint_every', 1, '--run.output_dir', out])],
                              capture_output=True, text=True, cwd=ROOT)
        elapsed = time.time() - start
        looks_complete = [d.name for d in out.glob('step-*') if '.' not in d.name and not (d / 'COMPLETE').exists()]
        ok = (proc.returncode != 0 and elapsed < 10 and f'rank 1: injected fault at {point}' in proc.stderr
              and 'watchdog' not in proc.stderr and not looks_complete)
        print(f'[{"ok" if ok else "FAIL"}] fault on rank 1 at {point}: exit {proc.returncode} after {elapsed:.1f} s')
        if not ok:
            failures.append(f'fault at {point}: rc={proc.returncode}, {elapsed:.1f} s, incomplete dirs named as '
                            f'complete: {looks_complete}, {proc.stderr[-500:]}')

    # --- hang safety: stop rank 1; rank 0 must give up within the watchdog timeout ---
    for how in ('SIGSTOP', 'SIGKILL'):
        out = work / f'hang-{how}'
        cmd = ['mpirun', '-np', '2', str(angle), *map(str, common + tiny + ['--train.max_steps', 100000,
               '--train.global_batch', 8, '--train.comm_timeout', 5, '--run.output_dir', out])]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.time() + 60
        while not (out / 'metrics.jsonl').exists() or len(losses(out)) < 3:
            if time.time() > deadline or proc.poll() is not None:
                break
            time.sleep(0.2)
        ranks = subprocess.run(['pgrep', '-f', '--', f'--run.output_dir {out}'], capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in ranks if int(p) != proc.pid]
        victim = None
        for pid in workers:  # the rank-1 process: its environment says so
            env = pathlib.Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
            if b'OMPI_COMM_WORLD_RANK=1' in env:
                victim = pid
        if victim is None:
            proc.kill()
            failures.append(f'{how}: could not find rank 1 ({workers})')
            continue
        start = time.time()
        os.kill(victim, getattr(signal, how))
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            failures.append(f'{how}: the job still ran 60 s after rank 1 was stopped')
            continue
        finally:
            if how == 'SIGSTOP':
                subprocess.run(['kill', '-9', str(victim)], capture_output=True)
        elapsed = time.time() - start
        named = re.search(r'rank 0: collective #\d+ \S+ .* did not complete within 5 s', stderr)
        print(f'{how} rank 1: job exited {proc.returncode} after {elapsed:.1f} s; watchdog message: {bool(named)}')
        if proc.returncode == 0 or elapsed > 30 or (how == 'SIGSTOP' and not named):
            failures.append(f'{how}: rc={proc.returncode}, {elapsed:.1f} s, stderr tail: {stderr[-600:]}')
    expect.exit_status()
    print('distributed checks passed')


if __name__ == '__main__':
    main()
