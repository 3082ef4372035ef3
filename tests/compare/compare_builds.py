#!/usr/bin/env python3
"""Two builds of `angle` behave the same (for a refactor that must not change behaviour):

1. the main job (jobs/default.ini, 30 steps, a metrics line per step, a checkpoint at step 15)
   on 1 rank, and the same job on 2 ranks at shard stage 3 with gradient caching (train.chunk 4):
   every metrics.jsonl loss, loss term, lr and grad_norm and every eval.json score bitwise equal;
2. a checkpoint written by the old build (step 15) resumed by the new one: steps 16-30 and the
   scores bitwise equal to the old build's uninterrupted run (the job identity hash unchanged);
3. run directories and a sweep written by the old build count as finished for the new one
   (`angle report --json`, `angle sweep --dry-run`).

   python3 tests/compare/compare_builds.py --old OLD/build/angle --new build/angle [--work DIR]

Run from the checkout's root (models/ and data/ as launch/setup.sh lays them out). About 6 minutes
on 2 cores. Exits 1 on any difference, naming it."""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

STEPS = 30
JOB = ['--job', 'jobs/default.ini', '--train.max_steps', str(STEPS), '--train.log_every', '1']
COMPARED = ('loss', 'lr', 'grad_norm', 'cosine', 'ibn', 'angle', 'cln', 'dropped_duplicates')


def run(cmd, **kw):
    print('$', ' '.join(map(str, cmd)), flush=True)
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f'failed ({proc.returncode}): {" ".join(map(str, cmd))}\n{proc.stderr[-2000:]}')
    return proc


def train(angle, out, ranks=1, extra=()):
    cmd = [angle, 'train', *JOB, '--run.output_dir', out, *extra]
    if ranks > 1:
        cmd = ['mpirun', '--oversubscribe', '--bind-to', 'none', '-np', ranks, '-x', 'OMP_NUM_THREADS=1'] + cmd
    env = {**os.environ, 'OMPI_ALLOW_RUN_AS_ROOT': '1', 'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1'}
    if ranks > 1:
        env['OMP_NUM_THREADS'] = '1'
    run(cmd, env=env)


def steps_of(out):
    """step -> the compared fields of its metrics line, as the text JSON wrote (exact doubles)."""
    lines = {}
    for line in (Path(out) / 'metrics.jsonl').read_text().splitlines():
        j = json.loads(line)
        if 'loss' in j:
            lines[j['step']] = {k: repr(j[k]) for k in COMPARED if k in j}
    return lines


def scores_of(out):
    """eval.json's scores (dev and test, final, best, base) and step counts."""
    j = json.loads((Path(out) / 'eval.json').read_text())
    keep = {k: j[k] for k in ('steps', 'ranks', 'seed', 'best', 'final', 'base') if k in j}
    return json.dumps(keep, sort_keys=True)


def same(label, old, new, failures, first_step=1):
    a, b = steps_of(old), steps_of(new)
    a = {s: v for s, v in a.items() if s >= first_step}
    b = {s: v for s, v in b.items() if s >= first_step}
    differ = [s for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)]
    steps_ok = not differ and len(a) == STEPS - first_step + 1
    scores_ok = scores_of(old) == scores_of(new)
    losses = [a[s]['loss'] for s in sorted(a)]
    print(f'[{"ok" if steps_ok else "FAIL"}] {label}: steps {first_step}-{STEPS} bitwise equal '
          f'({len(a)} lines; loss at step {first_step} {losses[0] if losses else "-"}, '
          f'at {STEPS} {losses[-1] if losses else "-"})')
    print(f'[{"ok" if scores_ok else "FAIL"}] {label}: eval.json scores equal: {scores_of(new)[:300]}')
    if not steps_ok:
        failures.append(f'{label}: steps differ at {differ[:5]}: {[(a.get(s), b.get(s)) for s in differ[:2]]}')
    if not scores_ok:
        failures.append(f'{label}: eval.json differs:\n  old {scores_of(old)}\n  new {scores_of(new)}')


def states(angle, path, work):
    """Each run's state in `angle report PATH`'s report.json."""
    out = work / 'report'
    shutil.rmtree(out, ignore_errors=True)
    run([angle, 'report', path, '--out', out, '--no-plots'])
    return [r['state'] for r in json.loads((out / 'report.json').read_text())['runs']]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--old', required=True, type=Path)
    parser.add_argument('--new', required=True, type=Path)
    parser.add_argument('--work', type=Path, default=Path('/tmp/angle-compare-builds'))
    args = parser.parse_args()
    old, new, work = args.old.resolve(), args.new.resolve(), args.work
    shutil.rmtree(work, ignore_errors=True)
    failures = []

    # 1. the main job on 1 rank (checkpoint at 15 for part 2), and on 2 ranks, stage 3, chunk 4
    for name, angle in (('old', old), ('new', new)):
        train(angle, work / name / 'default', extra=['--run.checkpoint_every', 15])
        train(angle, work / name / 'stage3-chunk', ranks=2, extra=['--shard.stage', 3, '--train.chunk', 4])
    same('default job, 1 rank', work / 'old/default', work / 'new/default', failures)
    same('2 ranks, stage 3, chunk 4', work / 'old/stage3-chunk', work / 'new/stage3-chunk', failures)

    # 2. the old build's step-15 checkpoint, resumed by the new build
    resumed = work / 'resumed'
    shutil.copytree(work / 'old/default', resumed, symlinks=True)
    shutil.rmtree(resumed / 'step-30')
    train(new, resumed, extra=['--run.checkpoint_every', 15, '--run.resume', resumed / 'step-15'])
    same('old checkpoint resumed by the new build', work / 'old/default', resumed, failures, first_step=16)

    # 3. the old build's run directories and sweeps are finished for the new build
    got = states(new, work / 'old/default', work)
    ok = got == ['finished']
    print(f'[{"ok" if ok else "FAIL"}] an old run directory is finished for the new `angle report`: {got}')
    if not ok:
        failures.append(f'old run directory: {got}')
    sweep = work / 'sweep'
    sweep_args = ['sweep', '--job', 'jobs/default.ini', '--grid', 'optim.lr=2e-5,3e-5', '--set', 'train.max_steps=2',
                  '--set', 'data.dev=', '--set', 'data.test=', '--out', sweep]
    run([old, *sweep_args])
    listing = run([new, *sweep_args, '--dry-run']).stdout
    ok = listing.count('[finished]') == 2 and states(new, sweep, work) == ['finished', 'finished']
    print(f'[{"ok" if ok else "FAIL"}] an old sweep is finished for the new build (sweep --dry-run, report)')
    if not ok:
        failures.append(f'old sweep:\n{listing}')

    print(f'{2 * 2 + 4 - len(failures)} passed, {len(failures)} failed')
    for f in failures:
        print('FAIL', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
