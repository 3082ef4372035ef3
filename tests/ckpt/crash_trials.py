#!/usr/bin/env python3
"""Crash trials at scale: a 2-rank training (tiny BERT, a checkpoint after every step, dropout on)
is killed with kill -9 at random moments (mid-step and mid-save alike), T times in a row, each
time resumed with --run.resume auto. After every kill: no checkpoint looks complete that is not
(COMPLETE marker and every shard's checksum), and the newest complete one, resumed in a copy of the
run directory, continues the uninterrupted run's per-step losses exactly (bitwise) to the last
step, with metrics.jsonl holding every step once. A chain that reaches its last step starts over;
a kill that comes after the run ended is not counted as a trial.

  python3 tests/ckpt/crash_trials.py --angle build/angle --tiny build/test-work/tiny-cased \\
      --data-dir data --work checkpoints/crash-trials [--trials 50] [--ranks 2]   (~10 minutes)"""
import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from check_checkpoints import ROOT, command, kill_tree, losses, run, valid  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ('--angle', '--tiny', '--data-dir', '--work'):
        ap.add_argument(flag, required=True)
    ap.add_argument('--trials', type=int, default=50)
    ap.add_argument('--ranks', type=int, default=2)
    ap.add_argument('--steps', type=int, default=150)
    ap.add_argument('--seed', type=int, default=1234)
    args = ap.parse_args()
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    angle, n, last = pathlib.Path(args.angle), args.ranks, args.steps
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    job = ['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', args.tiny, '--model.pooling', 'cls',
           '--model.max_length', 64, '--data.train', f'stsb:{args.data_dir}/STS/STSBenchmark/sts-train.csv',
           '--data.dev', '', '--data.test', '', '--train.log_every', 1, '--train.global_batch', 8,
           '--train.max_steps', last, '--run.checkpoint_every', 1, '--run.keep_last', 3]
    straight = work / 'straight'
    run(angle, n, job + ['--run.output_dir', straight])
    reference = losses(straight)
    rng = random.Random(args.seed)
    out = work / 'chain'
    passed, mid_save, restarts, failures, trial = 0, 0, 0, [], 0
    while trial < args.trials:
        if (out / 'final').exists():  # the chain reached its last step: start over
            shutil.rmtree(out)
            restarts += 1
        proc = subprocess.Popen(command(angle, n, job + ['--run.output_dir', out, '--run.resume', 'auto']), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 4.0))
        finished_first = proc.poll() is not None
        kill_tree(proc, out)
        if finished_first:  # not a crash: the run ended before the kill
            continue
        trial += 1
        named = sorted((d for d in out.glob('step-*') if d.name[5:].isdigit()), key=lambda d: int(d.name[5:]))
        broken = [d.name for d in named if (d / 'COMPLETE').exists() and not valid(d)]
        unfinished = [d.name for d in out.glob('step-*') if not d.name[5:].isdigit()]
        mid_save += bool(unfinished)
        complete = [d for d in named if (d / 'COMPLETE').exists() and valid(d)]
        problems = [f'{broken} look complete but are corrupt'] if broken else []
        newest = int(complete[-1].name[5:]) if complete else 0
        # The newest complete checkpoint (or none: a fresh start) continues the uninterrupted run.
        check = work / f'check-{trial}'
        if out.exists():
            shutil.copytree(out, check, symlinks=True)  # (killed before the run made its directory: none)
        run(angle, n, job + ['--run.output_dir', check, '--run.resume', 'auto'])
        got = losses(check)
        steps = [json.loads(l)['step'] for l in (check / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
        if got[newest:] != reference[newest:]:
            problems.append(f'resumed from step {newest}: losses differ from the uninterrupted run')
        if steps != list(range(1, last + 1)):
            problems.append(f'metrics.jsonl steps {steps[:8]}... are not 1..{last} once each')
        shutil.rmtree(check)
        ok = not problems
        passed += ok
        print(f'[{"ok" if ok else "FAIL"}] trial {trial}: killed after {newest} checkpointed steps'
              f'{", mid-save" if unfinished else ""}; {"; ".join(problems) or "resumes exactly"}', flush=True)
        if problems:
            failures.append(f'trial {trial}: {problems}')
    print(f'\n{passed} of {args.trials} crash trials resume exactly ({n} ranks, {mid_save} killed mid-save, '
          f'{restarts} chains completed and restarted)')
    if failures:
        raise SystemExit('FAILED:\n  ' + '\n  '.join(failures))


if __name__ == '__main__':
    main()
