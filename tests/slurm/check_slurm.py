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
  - no Slurm daemon is left running.
Needs root (slurmd starts the jobs); installs slurm-wlm and munge like launch/setup.sh does."""
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
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
        print(f'[{"ok" if ok else "FAIL"}] {label} {detail}')
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
        # Slurm holds a requeued job ~2 minutes (BeginTime); release it now, as an admin would.
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
        remaining = subprocess.run(['squeue', '-h'], capture_output=True, text=True).stdout.strip()
        check('no job left in the queue', remaining == '', remaining)
    print('cluster down: no daemon left')  # local_cluster raises otherwise
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))
    return 0


def logged(out):
    path = out / 'metrics.jsonl'
    return path.read_text().splitlines() if path.exists() else []


if __name__ == '__main__':
    sys.exit(main())
