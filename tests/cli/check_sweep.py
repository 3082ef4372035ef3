#!/usr/bin/env python3
"""angle sweep (local) and angle report, end to end on the tiny model:
  - a 2 x 2 grid (optim.lr x train.global_batch) x 2 seeds, 2 runs at a time: the manifest and the
    report list the 8 runs with their values and seeds; each run's scores in the report equal its
    own files (eval.json; the best of metrics.jsonl's dev lines); per configuration the mean and
    sample std equal numpy's; CSV and JSON agree; the pictures render to non-blank PNGs
    (ImageMagick's identify);
  - one run killed (-9) mid-run: the sweep carries on and reports it failed; rerunning the sweep
    trains only that run, which resumes from its checkpoint, and leaves the other 7 untouched;
  - a run that fails (its dev file is missing) shows as failed with its message;
  - bad input: malformed --grid/--set, an unknown key (before any run), a different sweep in the
    same directory, a report of a non-run directory or of a corrupt metrics line: one-line errors."""
import csv
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import setup  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
LRS, BATCHES, SEEDS = ['1e-4', '3e-4'], ['8', '16'], [42, 43]


GRID = ['optim.lr=' + ','.join(LRS), 'train.global_batch=' + ','.join(BATCHES)]


def sweep_args(tiny, data_dir, out, grid=GRID, steps=150):
    settings = {'model.path': tiny, 'model.pooling': 'cls', 'model.max_length': 32, 'train.max_steps': steps,
                'train.log_every': 5, 'train.eval_every': 50,
                'data.train': f'stsb:{data_dir}/STS/STSBenchmark/sts-train.csv',
                'data.dev': f'stsb:{data_dir}/STS/STSBenchmark/sts-dev.csv',
                'data.test': f'stsb:{data_dir}/STS/STSBenchmark/sts-test.csv'}
    swept = [g.split('=')[0] for g in grid]
    return ['sweep', '--job', ROOT / 'jobs/stsb.ini', *[a for g in grid for a in ('--grid', g)], '--seeds', 2,
            *[a for k, v in settings.items() if k not in swept for a in ('--set', f'{k}={v}')],
            '--checkpoint-every', 20, '--out', out]


def expected_runs():
    """(optim.lr, train.global_batch, seed) of each manifest row: first axis outermost, seeds innermost."""
    return [(lr, batch, seed) for lr in LRS for batch in BATCHES for seed in SEEDS]


def run(angle, args, check=True):
    proc = subprocess.run([str(angle)] + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        sys.exit(f'failed: angle {" ".join(map(str, args))}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}')
    return proc


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def main():
    import numpy as np
    args, angle, work, expect = setup(__doc__, '--tiny', '--data-dir')
    subprocess.run([str(ROOT / 'launch/apt-install.sh'), 'imagemagick'], check=True)  # identify, for the pictures
    failures = []

    def check(label, ok, detail=''):
        print(f'[{"ok" if ok else "FAIL"}] {label} {detail if not ok else detail[:100]}')
        if not ok:
            failures.append(f'{label} {detail}')

    # --- the 2 x 2 x 2 sweep, one run killed mid-run ---
    out = work / 'sweep'
    victim = out / 'run-005'
    proc = subprocess.Popen([str(angle)] + [str(a) for a in sweep_args(args.tiny, args.data_dir, out)] +
                            ['--parallel', '2'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while proc.poll() is None and not (victim / 'latest').exists() and time.time() < deadline:
        time.sleep(0.05)
    killed = subprocess.run(['pkill', '-9', '-f', '--', f'--run.output_dir {victim}'], capture_output=True).returncode == 0
    stdout, stderr = proc.communicate(timeout=600)
    check('sweep: run 5 killed mid-run, after its first checkpoint', killed and not (victim / 'eval.json').exists())
    check('sweep: exit 1 with one run failed', proc.returncode == 1 and '7 finished now, 0 finished before, 1 failed'
          in stdout, f'rc {proc.returncode}: {stdout[-300:]} {stderr[-500:]}')
    manifest = json.loads((out / 'manifest.json').read_text())
    expected = expected_runs()
    got = [(dict(r['overrides'])['optim.lr'], dict(r['overrides'])['train.global_batch'], r['seed'])
           for r in manifest['runs']]
    check('manifest: 8 rows, grid x seeds in order', got == expected, str(got))
    report = json.loads(run(angle, ['report', out, '--no-plots']).stdout and (out / 'report.json').read_text())
    states = {r['index']: r['state'] for r in report['runs']}
    killed_row = [r for r in report['runs'] if r['index'] == 5][0]
    check('report before the rerun: run 5 failed (killed by signal 9), 7 finished',
          states[5] == 'failed' and 'killed by signal 9' in killed_row['error'] and
          sum(s == 'finished' for s in states.values()) == 7, str(states))

    # --- rerun: only run 5 trains, resuming from its checkpoint ---
    before = {d.name: (d / 'eval.json').stat().st_mtime_ns for d in out.glob('run-*') if (d / 'eval.json').exists()}
    rerun = run(angle, ['sweep', '--out', out])
    after = {d.name: (d / 'eval.json').stat().st_mtime_ns for d in out.glob('run-*') if (d / 'eval.json').exists()}
    log = (victim / 'train.log').read_text()
    check('rerun: 7 skipped, run 5 resumed from its checkpoint and finished, the others untouched',
          '7 finished already, 1 to run' in rerun.stderr and 'resumed from' in log and 'run-005' in after and
          all(after[k] == v for k, v in before.items()), rerun.stderr[-400:])
    steps = [m['step'] for m in lines(victim / 'metrics.jsonl') if 'loss' in m]
    check('rerun: run 5 metrics.jsonl holds each logged step once', steps == list(range(5, 151, 5)), str(steps))
    # wall time is summed over the resume: elapsed_s keeps growing across it, eval.json's wall_s is past it
    elapsed = [m['elapsed_s'] for m in lines(victim / 'metrics.jsonl') if 'loss' in m]
    wall = json.loads((victim / 'eval.json').read_text())['wall_s']
    check('rerun: run 5 elapsed_s grows across the resume and wall_s covers it',
          all(b > a for a, b in zip(elapsed, elapsed[1:])) and wall >= elapsed[-1], f'{elapsed[::6]} wall {wall}')
    check('sweep again when all finished: nothing runs', '8 finished already, 0 to run' in
          run(angle, ['sweep', '--out', out]).stderr)

    # --- the report: values, scores from each run's own files, per-configuration statistics ---
    table = run(angle, ['report', out]).stdout
    report = json.loads((out / 'report.json').read_text())
    runs = report['runs']
    check('report: 8 runs, all finished', len(runs) == 8 and all(r['state'] == 'finished' for r in runs))
    wrong = []
    for r in runs:
        lr, batch, seed = expected[r['index']]
        own = json.loads((out / f'run-{r["index"]:03d}' / 'eval.json').read_text())
        devs = [m['dev']['spearman'] for m in lines(out / f'run-{r["index"]:03d}' / 'metrics.jsonl') if 'dev' in m]
        if (r['values'] != {'optim.lr': lr, 'train.global_batch': batch} or r['seed'] != seed or
                r['test_spearman'] != own['best']['test']['spearman'] or r['best_dev_spearman'] != max(devs) or
                r['pairs_per_s'] != own['pairs_per_s'] or not r['version'].startswith(own['version'])):
            wrong.append(r['index'])
    check('report: each run\'s values, seed and scores are its own', not wrong, f'wrong rows {wrong}')
    dev_order = [r['best_dev_spearman'] for r in runs]
    check('report: sorted by dev score', dev_order == sorted(dev_order, reverse=True))
    for c in report['configurations']:
        mine = [r['best_dev_spearman'] for r in runs if r['values'] == c['values']]
        ok = c['runs'] == 2 and abs(c['dev_mean'] - np.mean(mine)) < 1e-9 and abs(c['dev_std'] - np.std(mine, ddof=1)) < 1e-9
        check(f'report: configuration {c["values"]} mean ± std over 2 seeds', ok, f'{c}')
    rows = list(csv.DictReader((out / 'report.csv').open()))
    check('report: CSV rows equal the JSON ones',
          [(int(r['index']), r['optim.lr'], float(r['best_dev_spearman'])) for r in rows] ==
          [(r['index'], r['values']['optim.lr'], round(r['best_dev_spearman'], 6)) for r in runs])
    check('report: the table shows every run and the configurations', table.count('  finished  ') == 8 and
          'per configuration' in table)
    for name in ('loss', 'dev', 'score-vs-optim.lr', 'score-vs-train.global_batch'):
        png = out / 'plots' / f'{name}.png'
        shape = subprocess.run(['identify', '-format', '%m %w %h %[fx:standard_deviation]', png],
                               capture_output=True, text=True).stdout.split() if png.exists() else []
        check(f'plot {name}.png renders to a non-blank image', len(shape) == 4 and shape[0] == 'PNG' and
              int(shape[1]) >= 640 and float(shape[3]) > 0.02, str(shape))

    # --- a run that fails shows as failed, with its message ---
    failing = work / 'failing'
    dev = f'data.dev=stsb:{args.data_dir}/STS/STSBenchmark/sts-dev.csv,stsb:{work}/missing.csv'
    proc = run(angle, sweep_args(args.tiny, args.data_dir, failing, [dev], steps=10), check=False)
    report = json.loads(run(angle, ['report', failing]).stdout and (failing / 'report.json').read_text())
    states = sorted((r['index'], r['state'], r['error']) for r in report['runs'])
    check('failing run: the sweep exits 1, the report shows the failed runs with their message',
          proc.returncode == 1 and [s[1] for s in states] == ['finished', 'finished', 'failed', 'failed'] and
          all('missing.csv' in s[2] for s in states[2:]), f'rc {proc.returncode} {states}')

    # --- SIGTERM stops a local sweep: the runs checkpoint; the next sweep continues them ---
    stopped = work / 'stopped'
    proc = subprocess.Popen([str(angle)] + [str(a) for a in sweep_args(args.tiny, args.data_dir, stopped,
                                                                       ['optim.lr=1e-4'], steps=400)] +
                            ['--parallel', '2'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not all(
            (stopped / f'run-00{i}' / 'latest').exists() for i in (0, 1)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    logs = [(stopped / f'run-00{i}' / 'train.log').read_text() for i in (0, 1)]
    check('SIGTERM: the sweep exits 143, both runs checkpointed and stopped',
          proc.returncode == 143 and all('stopped by signal 15' in l for l in logs) and
          not any((stopped / f'run-00{i}' / 'eval.json').exists() for i in (0, 1)), f'rc {proc.returncode} {stderr[-400:]}')
    rerun = run(angle, ['sweep', '--out', stopped])
    steps = [[m['step'] for m in lines(stopped / f'run-00{i}' / 'metrics.jsonl') if 'loss' in m] for i in (0, 1)]
    check('SIGTERM: the next sweep continues both runs to the end, each step once',
          '0 finished already, 2 to run' in rerun.stderr and all(s == list(range(5, 401, 5)) for s in steps) and
          all('resumed from' in (stopped / f'run-00{i}' / 'train.log').read_text() for i in (0, 1)))

    # --- bad input ---
    def variant(grid0):
        return sweep_args(args.tiny, args.data_dir, work / 'bad', [grid0])
    expect.failure('grid without =', variant('optim.lr'), ["'optim.lr'", 'section.key=value'], output=work / 'bad')
    expect.failure('grid with an empty value', variant('optim.lr=1e-4,,2e-4'), ['empty value'], output=work / 'bad')
    expect.failure('grid of an unknown key', variant('optim.nosuch=1,2'), ['run 0', 'optim.nosuch'], output=work / 'bad')
    expect.failure('grid of the seed', variant('train.seed=1,2'), ['--seeds'], output=work / 'bad')
    expect.failure('a different sweep in the same directory',
                   sweep_args(args.tiny, args.data_dir, out, ['optim.lr=5e-5', GRID[1]]),
                   ['holds a different sweep'])
    expect.failure('--out alone without a sweep there', ['sweep', '--out', work / 'nothing'], ['--job is needed'])
    expect.failure('report of a directory that is no run', ['report', work / 'sweep' / 'plots'], ['neither a sweep'])
    corrupt = work / 'corrupt'
    shutil.copytree(out / 'run-000', corrupt, ignore=shutil.ignore_patterns('step-*', 'best', 'final', 'latest'))
    text = (corrupt / 'metrics.jsonl').read_text().splitlines()
    text[2] = text[2][:20]
    (corrupt / 'metrics.jsonl').write_text('\n'.join(text) + '\n')
    expect.failure('report of a corrupt metrics line', ['report', corrupt], [f'{corrupt}/metrics.jsonl:3'])
    manifest = json.loads((out / 'manifest.json').read_text())
    manifest['runs'][1]['output_dir'] = '../elsewhere'
    (work / 'escaping').mkdir()
    (work / 'escaping' / 'manifest.json').write_text(json.dumps(manifest))
    expect.failure('manifest row outside the sweep', ['report', work / 'escaping'], ['runs[1].output_dir'])
    failures += expect.failures
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))


if __name__ == '__main__':
    main()
