#!/usr/bin/env python3
"""slurm/train.sbatch under a real Slurm (slurmctld + slurmd + munged brought up on this machine by
slurm/local-cluster.sh, srun --mpi=pmix with 2 tasks), torn down at the end even on failure:
  - an uninterrupted 2-task run completes;
  - preemption: `scancel --batch --signal=USR1` mid-run -> the ranks checkpoint -> the job requeues
    itself -> the restart resumes: final parameters bitwise equal to the uninterrupted run, each
    step once in metrics.jsonl;
  - a different task count: the same, with the pending job updated to 1 task (dropout 0): final
    parameters within 1e-5 (relative L2) of the uninterrupted 2-task run;
  - a failing run (a bad job key) ends the job FAILED, not requeued;
  - angle sweep --slurm: a 2 x 2 grid x 2 seeds as one job array; one task cancelled mid-run;
    the same `angle sweep --slurm` again submits only that run, which resumes; the report lists
    the 8 runs with their values and seeds, all finished;
  - no Slurm daemon is left running.
Needs root (slurmd starts the jobs); installs slurm-wlm and munge like launch/setup.sh does."""
import json
import pathlib
import re
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
from check_sweep import expected_runs, sweep_args  # noqa: E402
from expect import setup  # noqa: E402
from local_cluster import ROOT, finished, local_cluster, sbatch, wait_for  # noqa: E402
from runs import final_params, metrics, param_distance  # noqa: E402

SKIP = 77  # CTest SKIP_RETURN_CODE
STEPS = 300


def main():
    args, angle, work, _ = setup(__doc__, '--tiny', '--data-dir')
    import os
    if os.geteuid() != 0:
        print('skipped: slurmd needs root to start jobs')
        return SKIP
    subprocess.run([str(ROOT / 'launch/apt-install.sh'), 'slurm-wlm', 'munge'], check=True)
    os.environ['ANGLE_BIN'] = str(angle)
    train = [ROOT / 'jobs/stsb.ini', '--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64,
             '--data.train', f'stsb:{args.data_dir}/STS/STSBenchmark/sts-train.csv', '--data.dev', '',
             '--data.test', '', '--train.log_every', 1, '--train.global_batch', 8, '--train.max_steps', STEPS]
    failures = []

    def check(label, ok, detail=''):
        print(f'[{"ok" if ok else "FAIL"}] {label} {detail if not ok else detail[:100]}')
        if not ok:
            failures.append(f'{label} {detail}')

    def submit(name, extra=(), tasks=2):
        out = work / name
        return sbatch('-n', tasks, '-o', work / f'{name}.out', ROOT / 'slurm/train.sbatch', *train,
                      '--run.output_dir', out, *extra), out

    def completed(job_id, name):
        fields = wait_for(job_id, finished, 'finished')
        log = (work / f'{name}.out').read_text()
        ok = fields['JobState'] == 'COMPLETED' and fields['ExitCode'] == '0:0'
        check(f'{name}: job {job_id} {fields["JobState"]} exit {fields["ExitCode"]}', ok, '' if ok else log[-1500:])
        return fields, log

    def preempted(name, extra, tasks_after):
        """Signals the job once 20 steps are logged, waits for its requeue, lets it restart with
        `tasks_after` tasks, waits for the end. Returns (fields, log, output dir)."""
        job_id, out = submit(name, extra)
        wait_for(job_id, lambda f: finished(f) or len(logged(out)) >= 20, '20 steps in', timeout=120)
        subprocess.run(['scancel', '--batch', '--signal=USR1', job_id], check=True)
        fields = wait_for(job_id, lambda f: finished(f) or (f['JobState'] == 'PENDING' and f['Restarts'] == '1'),
                          'requeued')
        check(f'{name}: requeued after USR1', fields['JobState'] == 'PENDING', fields['JobState'])
        # Slurm holds a requeued job ~2 minutes (BeginTime); release it now, as an admin would, but
        # in a later second than the requeue: slurmd compares the new launch credential's creation
        # time with the old one's revocation at one-second resolution, and a launch in the same
        # second fails the job ("Job credential revoked", seen once in CI).
        time.sleep(2)
        update = ['StartTime=now'] + ([f'NumTasks={tasks_after}', f'NumCPUs={tasks_after}'] if tasks_after != 2 else [])
        subprocess.run(['scontrol', 'update', f'JobId={job_id}', *update], check=True)
        fields, log = completed(job_id, name)
        stopped = re.search(r'stopped by signal 10 after step (\d+)', log)
        check(f'{name}: USR1 stopped the ranks with a checkpoint', stopped is not None,
              f'after step {stopped.group(1)}' if stopped else log[-1500:])
        steps = [m['step'] for m in metrics(out)]
        check(f'{name}: metrics.jsonl holds steps 1..{STEPS} once', steps == list(range(1, STEPS + 1)))
        check(f'{name}: the restart ran with {tasks_after} task(s) and resumed',
              f'with {tasks_after} tasks, restart 1' in log and 'resumed from' in log and fields['Restarts'] == '1')
        return out

    with local_cluster(work / 'cluster') as pids:
        print(f'cluster up: daemons {pids}')
        # --- uninterrupted, then preempted at the same task count: bitwise ---
        job_id, straight = submit('straight')
        completed(job_id, 'straight')
        out = preempted('preempted', (), 2)
        a, b = final_params(straight), final_params(out)
        check('preempted + requeued (2 tasks) == uninterrupted: bitwise', all((a[k] == b[k]).all() for k in a))

        # --- requeued with 1 task instead of 2, dropout 0: within 1e-5 ---
        job_id, straight0 = submit('straight-dropout0', ('--model.dropout', 0))
        completed(job_id, 'straight-dropout0')
        out = preempted('requeued-1-task', ('--model.dropout', 0), 1)
        distance = param_distance(final_params(out), final_params(straight0))
        check('requeued 2 -> 1 task vs uninterrupted 2 tasks: relative L2 <= 1e-5', distance <= 1e-5,
              f'{distance:.2e}')

        # --- a run that fails is not requeued ---
        job_id, _ = submit('bad-batch', ('--train.global_batch', 7))
        fields = wait_for(job_id, finished, 'finished')
        log = (work / 'bad-batch.out').read_text()
        check('failing run: job FAILED, not requeued, error in the log',
              fields['JobState'] == 'FAILED' and fields['Restarts'] == '0' and 'must be divisible' in log,
              f'{fields["JobState"]} restarts {fields["Restarts"]}')
        # --- a sweep as a job array; one task cancelled, then resubmitted alone ---
        sweep = work / 'sweep'
        submit_sweep = [str(angle)] + [str(a) for a in sweep_args(args.tiny, args.data_dir, sweep)] + \
            ['--slurm', '--sbatch-arg=--ntasks=1']
        proc = subprocess.run(submit_sweep, capture_output=True, text=True, cwd=ROOT)
        array = re.search(r'submitted job array (\d+) \(--array=([^)]*)\)', proc.stdout)
        check('sweep --slurm: one array of the 8 runs', array is not None and array.group(2) == '0,1,2,3,4,5,6,7',
              proc.stdout[-300:] + proc.stderr[-500:])
        if array:
            victim = sweep / 'run-005'
            wait_for(f'{array.group(1)}_5', lambda f: finished(f) or (victim / 'latest').exists(), 'checkpointed')
            subprocess.run(['scancel', f'{array.group(1)}_5'], check=True)
            wait_for_queue_empty()
            proc = subprocess.run(submit_sweep, capture_output=True, text=True, cwd=ROOT)
            again = re.search(r'submitted job array (\d+) \(--array=([^)]*)\)', proc.stdout)
            check('sweep --slurm again: only the cancelled run', again is not None and again.group(2) == '5',
                  proc.stdout[-300:] + proc.stderr[-500:])
            wait_for_queue_empty()
            log = (sweep / f'slurm-{again.group(1)}_5.out').read_text() if again else ''
            check('sweep --slurm again: run 5 resumed from its checkpoint', 'resumed from' in log, log[-500:])
            subprocess.run([str(angle), 'report', sweep, '--no-plots'], check=True, capture_output=True)
            report = json.loads((sweep / 'report.json').read_text())
            got = sorted((r['index'], r['state'], r['values']['optim.lr'], r['values']['train.global_batch'], r['seed'])
                         for r in report['runs'])
            want = [(i, 'finished', lr, batch, seed) for i, (lr, batch, seed) in enumerate(expected_runs())]
            check('sweep --slurm: the report lists the 8 runs, finished, with their values', got == want, str(got))

        remaining = subprocess.run(['squeue', '-h'], capture_output=True, text=True).stdout.strip()
        check('no job left in the queue', remaining == '', remaining)
    print('cluster down: no daemon left')  # local_cluster raises otherwise
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))
    return 0


def wait_for_queue_empty(timeout=300):
    deadline = time.time() + timeout
    while subprocess.run(['squeue', '-h'], capture_output=True, text=True).stdout.strip():
        if time.time() > deadline:
            raise RuntimeError(f'jobs still queued after {timeout} s')
        time.sleep(0.2)


def logged(out):
    path = out / 'metrics.jsonl'
    return path.read_text().splitlines() if path.exists() else []


if __name__ == '__main__':
    sys.exit(main())
