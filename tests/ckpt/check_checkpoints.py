#!/usr/bin/env python3
"""Checkpoints that survive anything and resume exactly, on any number of ranks:
  - exact resume: 10 steps straight vs the same job checkpointing every 5 steps, killed (-9) after
    the step-5 checkpoint and resumed: losses of steps 6-10 and final parameters bitwise equal, at
    N = 1 and N = 2, dropout on;
  - negative controls: a resume with other dropout keys, or without the cursor, does NOT match;
  - reshard: saved at N = 2, resumed at N = 1 and N = 4: losses within 1e-5 (tiny BERT) and 1e-4
    (MiniLM), dropout 0;
  - signal: SIGTERM mid-run -> checkpoint -> exit 143 -> resume continues exactly;
  - crash: 10 seeded kill -9 at random moments (checkpoint every step, so also during writes):
    every directory named step-N is complete and passes its checksums, and resume always works;
  - bad input: manifest from a newer format, shard missing, shard truncated, a different job
    (unless --run.allow_job_change true), a full disk (tiny tmpfs): previous checkpoint usable."""
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
from expect import setup  # noqa: E402
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
from runs import losses, metrics  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
failures = []


def command(angle, n, args):
    base = [str(angle)] + [str(a) for a in args]
    return base if n == 0 else ['mpirun', '--oversubscribe', '-np', str(n)] + base


def run(angle, n, args, check=True):
    proc = subprocess.run(command(angle, n, args), capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        sys.exit(f'failed: {" ".join(command(angle, n, args))}\n{proc.stderr[-2000:]}')
    return proc


def wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_tree(proc, out):
    """kill -9 the launcher and every rank of this run (mpirun puts ranks in their own groups)."""
    pattern = f'--run.output_dir {out}'
    for _ in range(200):
        subprocess.run(['pkill', '-9', '-f', '--', pattern], capture_output=True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if subprocess.run(['pgrep', '-f', '--', pattern], capture_output=True).returncode != 0:
            break
        time.sleep(0.05)
    proc.wait()


def valid(step_dir):
    manifest = json.loads((step_dir / 'manifest.json').read_text())
    return (step_dir / 'COMPLETE').exists() and all(
        hashlib.sha256((step_dir / s['file']).read_bytes()).hexdigest() == s['sha256'] for s in manifest['shards'])


def params(out):
    from safetensors.numpy import load_file
    path = out / 'model.safetensors' if (out / 'model.safetensors').exists() else out / 'final/model.safetensors'
    return load_file(str(path))


def same_params(a, b):
    import numpy as np
    return all(np.array_equal(a[k], b[k]) for k in a)


def main():
    args, angle, work, expect = setup(__doc__, '--tiny', '--model', '--data-dir')
    train_csv = f'stsb:{args.data_dir}/STS/STSBenchmark/sts-train.csv'
    tiny = ['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', args.tiny, '--model.pooling', 'cls',
            '--model.max_length', 64, '--data.train', train_csv, '--data.dev', '', '--data.test', '',
            '--train.log_every', 1, '--train.global_batch', 8, '--train.max_steps', 10]

    # --- exact resume after kill -9, N = 1 and 2, dropout on ---
    for n in (0, 2):
        label = f'N={max(n, 1)}'
        straight = work / f'straight-{n}'
        run(angle, n, tiny + ['--run.output_dir', straight])
        out = work / f'killed-{n}'
        proc = subprocess.Popen(command(angle, n, tiny + ['--run.output_dir', out, '--run.checkpoint_every', 5]),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(out / 'step-5' / 'COMPLETE', proc)
        kill_tree(proc, out)  # (a fast run may have finished already: later checkpoints are removed below)
        if not (out / 'step-5' / 'COMPLETE').exists():
            failures.append(f'{label}: no step-5 checkpoint appeared')
            continue
        for d in out.glob('step-*'):  # keep only step 5, as if killed right after it
            if d.name != 'step-5':
                shutil.rmtree(d)
        run(angle, n, tiny + ['--run.output_dir', out, '--run.checkpoint_every', 5, '--run.resume', 'auto'])
        a, b = losses(straight), losses(out)
        # metrics.jsonl holds each step once after the resume (the killed run's later lines are gone)
        steps = [m['step'] for m in metrics(out)]
        ok = a[5:] == b[5:] and steps == list(range(1, 11)) and same_params(params(straight), params(out))
        print(f'[{"ok" if ok else "FAIL"}] exact resume {label}: steps 6-10 {b[5:]}')
        if not ok:
            failures.append(f'exact resume {label}: {a} vs {b}')
        # negative controls: other dropout keys (the masks are keyed by text, not drawn from a
        # generator that a checkpoint restores) or skipping the cursor must break the equality
        if n == 0:
            for variable, value in (('ANGLE_TEST_DROPOUT_SALT', '1'), ('ANGLE_TEST_SKIP_RESTORE', 'cursor')):
                control = work / f'control-{value}'
                shutil.copytree(out, control, symlinks=True)
                for d in control.glob('step-*'):
                    if d.name != 'step-5':
                        shutil.rmtree(d)
                os.environ[variable] = value
                run(angle, 0, tiny + ['--run.output_dir', control, '--run.checkpoint_every', 5, '--run.resume', 'auto'])
                del os.environ[variable]
                differs = losses(control)[5:] != a[5:]
                print(f'[{"ok" if differs else "FAIL"}] negative control ({variable}={value}): resume differs = {differs}')
                if not differs:
                    failures.append(f'{variable}={value} on resume still matched: the exact-resume test cannot fail')

    # --- angle export from a sharded checkpoint written by 2 ranks = the run's final model ---
    exported = work / 'exported-from-2-ranks'
    run(angle, 0, ['export', '--checkpoint', work / 'killed-2/step-10', '--output', exported])
    ok = (exported / 'model.safetensors').exists() and same_params(params(work / 'killed-2'), params(exported))
    print(f'[{"ok" if ok else "FAIL"}] export of step-10 (2 shards) equals final/ bitwise')
    if not ok:
        failures.append('angle export from a 2-rank checkpoint differs from the final model')

    # --- reshard: save at N=2, resume at N=1 and N=4 (dropout 0) ---
    for name, model_args, tolerance in (('tiny', [], 1e-5),
                                        ('MiniLM', ['--model.path', args.model, '--model.pooling', 'mean',
                                                    '--model.max_length', 32], 1e-4)):
        job = tiny + model_args + ['--model.dropout', 0]
        straight = work / f'reshard-{name}-straight'
        run(angle, 2, job + ['--run.output_dir', straight])
        saved = work / f'reshard-{name}-saved'  # the same job at N=2, keeping only its step-5 checkpoint
        run(angle, 2, job + ['--run.output_dir', saved, '--run.checkpoint_every', 5])
        shutil.rmtree(saved / 'step-10')
        for m in (1, 4):
            out = work / f'reshard-{name}-to-{m}'
            shutil.copytree(saved, out, symlinks=True)
            run(angle, m, job + ['--run.output_dir', out, '--run.checkpoint_every', 5, '--run.resume', 'auto'])
            a, b = losses(straight)[5:], losses(out)[5:]
            worst = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if len(b) == 5 else 1
            print(f'[{"ok" if worst <= tolerance else "FAIL"}] reshard {name} 2 -> {m}: worst {worst:.2e}')
            if worst > tolerance:
                failures.append(f'reshard {name} 2 -> {m}: {a} vs {b}')

    # --- SIGTERM: checkpoint, exit 143, exact continuation ---
    straight = work / 'straight-0'
    out = work / 'sigterm'
    proc = subprocess.Popen(command(angle, 0, tiny + ['--run.output_dir', out]), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and (not (out / 'metrics.jsonl').exists() or len(losses(out)) < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    steps_done = len(losses(out))
    checkpoint = out / f'step-{steps_done}'
    ok = proc.returncode == 143 and checkpoint.is_dir() and valid(checkpoint)
    run(angle, 0, tiny + ['--run.output_dir', out, '--run.resume', 'auto'])
    ok = ok and losses(out) == losses(straight) and same_params(params(straight), params(out))
    print(f'[{"ok" if ok else "FAIL"}] SIGTERM after step {steps_done}: exit {proc.returncode}, resumed exactly: {ok}')
    if not ok:
        failures.append(f'SIGTERM: rc={proc.returncode}, {stderr[-300:]}')

    # --- crash: kill -9 at random moments, 10 seeded trials ---
    rng = random.Random(1234)
    out = work / 'crash'
    for trial in range(10):
        proc = subprocess.Popen(command(angle, 0, tiny + ['--run.output_dir', out, '--run.checkpoint_every', 1,
                                                           '--run.keep_last', 3, '--run.resume', 'auto',
                                                           '--train.max_steps', 5000]),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.8, 3.0))
        kill_tree(proc, out)
        named = [d for d in out.glob('step-*') if d.name[5:].isdigit()]
        broken = [d.name for d in named if not (d / 'COMPLETE').exists() or not valid(d)]
        leftovers = [d.name for d in out.glob('step-*') if not d.name[5:].isdigit()]
        print(f'crash trial {trial}: complete checkpoints {sorted(d.name for d in named)}, '
              f'unfinished {leftovers}, broken {broken}')
        if broken:
            failures.append(f'crash trial {trial}: {broken} look complete but are corrupt')
    last = max(int(d.name[5:]) for d in out.glob('step-*') if d.name[5:].isdigit())
    final = run(angle, 0, tiny + ['--run.output_dir', out, '--run.checkpoint_every', 1, '--run.keep_last', 3,
                                  '--run.resume', 'auto', '--train.max_steps', last + 3, '--run.allow_job_change', 'true'])
    if 'resumed from' not in final.stderr:
        failures.append('after the crashes, --run.resume auto did not resume')
    steps = [m['step'] for m in metrics(out)]
    ok = steps == list(range(1, last + 4))
    print(f'[{"ok" if ok else "FAIL"}] after 10 kills and resumes metrics.jsonl holds steps 1..{last + 3} once each')
    if not ok:
        failures.append(f'metrics.jsonl after the crash trials: steps {steps[:40]}...')

    # --- bad input ---
    good = work / 'bad-base'
    run(angle, 0, tiny + ['--run.output_dir', good, '--run.checkpoint_every', 5, '--run.keep_last', 2])
    def variant(name, edit):
        d = work / name
        shutil.copytree(good, d, symlinks=True)
        edit(d)
        return d
    future = variant('bad-future', lambda d: (d / 'step-10/manifest.json').write_text(
        (d / 'step-10/manifest.json').read_text().replace('"format_version": 2', '"format_version": 7')))
    resume_args = tiny
    expect.failure('manifest from a newer format version', resume_args + ['--run.output_dir', future, '--run.resume',
                   future / 'step-10'], ['manifest.json', 'format version 7 is newer'])
    missing = variant('bad-missing', lambda d: (d / 'step-10/shard-0-of-1.safetensors').unlink())
    expect.failure('shard file missing (explicit checkpoint)', resume_args + ['--run.output_dir', missing,
                   '--run.resume', missing / 'step-10'], ['step-10', 'shard-0-of-1.safetensors is missing'])
    proc = run(angle, 0, resume_args + ['--run.output_dir', missing, '--run.resume', 'auto'])
    ok = 'skipping checkpoint' in proc.stderr and 'resumed from' in proc.stderr and 'step-5' in proc.stderr
    print(f'[{"ok" if ok else "FAIL"}] auto resume skips the broken step-10 and uses step-5')
    if not ok:
        failures.append(f'auto resume with a missing shard: {proc.stderr[-500:]}')
    # hostile manifests: a shard path of the manifest's choosing, a parameter count no shard backs
    def edit_manifest(d, change):
        path = d / 'step-10/manifest.json'
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))
    escaping = variant('bad-path', lambda d: edit_manifest(d, lambda m: m['shards'][0].update(file='../../job.ini')))
    expect.failure('manifest naming a file outside the checkpoint', ['export', '--checkpoint', escaping / 'step-10',
                   '--output', work / 'export-escaping'], ['shards[0]', "'../../job.ini' is not shard-0-of-1"])
    def huge(m):
        m['numel'] = 10 ** 15
        m['shards'][0]['ranges'] = [[0, 10 ** 15]]
    inflated = variant('bad-numel', lambda d: edit_manifest(d, huge))
    expect.failure('manifest claiming 10^15 parameters (no allocation)', ['export', '--checkpoint',
                   inflated / 'step-10', '--output', work / 'export-inflated'], ['shorter than its ranges'])
    wrong_type = variant('bad-type', lambda d: edit_manifest(d, lambda m: m.update(world_size='two')))
    expect.failure('manifest field of the wrong type', resume_args + ['--run.output_dir', wrong_type, '--run.resume',
                   wrong_type / 'step-10'], ['manifest.json', "'world_size' has the wrong type"])

    def truncate(d):
        f = d / 'step-10/shard-0-of-1.safetensors'
        f.write_bytes(f.read_bytes()[:1000])
    truncated = variant('bad-truncated', truncate)
    expect.failure('shard file truncated', resume_args + ['--run.output_dir', truncated, '--run.resume',
                   truncated / 'step-10'], ['step-10', 'fails its checksum'])
    expect.failure('a different job', resume_args + ['--run.output_dir', good, '--run.resume', 'auto',
                   '--optim.lr', '3e-5'], ['manifest.json', 'different job configuration', 'allow_job_change'])
    expect.failure('a different model', ['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', args.model,
                   '--data.train', train_csv, '--data.dev', '', '--data.test', '', '--run.output_dir', good,
                   '--run.resume', 'auto', '--run.allow_job_change', 'true'], ['manifest.json', 'different model'])
    changed = run(angle, 0, resume_args + ['--run.output_dir', variant('job-change', lambda d: None), '--run.resume',
                                           'auto', '--optim.lr', '3e-5', '--run.allow_job_change', 'true'], check=False)
    if changed.returncode != 0:
        failures.append(f'--run.allow_job_change true did not resume: {changed.stderr[-300:]}')
    # full disk: the second checkpoint does not fit; the first must stay usable
    disk = work / 'tmpfs'
    disk.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=6M', 'tmpfs', str(disk)]).returncode == 0:
        try:
            expect.failure('disk full while writing a checkpoint', tiny + ['--run.output_dir', disk,
                           '--run.checkpoint_every', 5, '--run.keep_last', 5], ['disk full'])
            ok = (disk / 'step-5').is_dir() and valid(disk / 'step-5') and not (disk / 'step-10').exists()
            print(f'[{"ok" if ok else "FAIL"}] after the failed write, step-5 is intact and no step-10 exists')
            if not ok:
                failures.append('full disk: the previous checkpoint is not intact')
        finally:
            subprocess.run(['umount', str(disk)])
    else:
        failures.append('could not mount a tmpfs for the full-disk test (needs root)')
    failures.extend(expect.failures)
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))
    print('checkpoint checks passed')


if __name__ == '__main__':
    main()
