#!/usr/bin/env python3
"""slurm/train.sbatch across nodes: a Slurm cluster on emulated hosts (tests/hosts/slurm_hosts.py:
slurmctld on host ctl, one slurmd on each of node1..node3, each host a network namespace with its
own name, address and /tmp), torn down at the end even on failure:
  - `sbatch -N 2` trains with one rank on each of two hosts (the ranks' preflight lines) to the
    end (FINISHED, eval.json);
  - preemption across nodes: `scancel --batch --signal=USR1` mid-run -> the ranks on both nodes
    checkpoint and exit 138 -> the job requeues itself -> released with the first node excluded,
    it restarts on another pair of hosts, resumes from that checkpoint (not step 1), trains only
    the remaining steps and finishes; final parameters bitwise equal to the uninterrupted run;
  - slurm/train-gpu.sbatch on fake GPUs (gres/gpu on /dev/null, 1 per node): with the device
    overridden to the CPU, 2 nodes x 1 task x 2 CPUs train to the end with 2 threads per rank;
    as written (cuda, nccl) the ranks refuse for want of a CUDA device and the job ends FAILED,
    not requeued;
  - afterwards no process of the cluster is left and its network namespaces are gone;
  - (without Slurm) train.sbatch's tasks and CPUs per task on an uneven allocation.
Skipped (77) without root or where network namespaces cannot be made; fails without Slurm (launch/setup.sh
installs it)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'cli'))
sys.path.insert(0, str(HERE.parent / 'mpi'))
sys.path.insert(0, str(HERE.parent / 'slurm'))
import slurm_hosts  # noqa: E402
import testbed  # noqa: E402
from expect import setup  # noqa: E402
from local_cluster import ROOT  # noqa: E402
from runs import final_params, metrics  # noqa: E402
from slurm_hosts import finished  # noqa: E402

SKIP = 77  # CTest SKIP_RETURN_CODE
STEPS = 200
failures = []


def check(label, ok, detail=''):
    print(f'[{"ok" if ok else "FAIL"}] {label}: {detail[:300] if ok else detail}')
    if not ok:
        failures.append(f'{label}: {detail}')


def segments(log):
    """The job log cut at each start of train.sbatch: one piece per run of the job."""
    return [piece for piece in re.split(r'(?m)^(?=start \S+ on )', log) if piece.startswith('start ')]


def rank_hosts(piece):
    """{rank: host} from the ranks' preflight lines."""
    return {int(r): h for r, h in re.findall(r'\[rank (\d+)/\d+\] host (\S+),', piece)}


def run_dir_done(out, steps):
    """FINISHED and eval.json present, eval.json's steps == `steps`; returns (ok, detail, eval)."""
    ev = json.loads((out / 'eval.json').read_text()) if (out / 'eval.json').exists() else {}
    ok = (out / 'FINISHED').exists() and ev.get('steps') == steps
    return ok, f'FINISHED {(out / "FINISHED").exists()}, eval.json steps {ev.get("steps")} (want {steps})', ev


def completed(c, work, job_id, name):
    fields = c.wait_for(job_id, finished, 'finished')
    log = (work / f'{name}.out').read_text()
    ok = fields['JobState'] == 'COMPLETED' and fields['ExitCode'] == '0:0'
    check(f'{name}: job {job_id} ended', ok, f'{fields["JobState"]} exit {fields["ExitCode"]} on {fields["NodeList"]}'
          + ('' if ok else '\n' + log[-2000:]))
    return fields, log


def straight_run(c, work, submit):
    job_id, out = submit('straight')
    fields, log = completed(c, work, job_id, 'straight')
    hosts = rank_hosts(log)
    check('straight: 2 ranks on 2 different hosts, those of the allocation', len(set(hosts.values())) == 2 and
          sorted(hosts.values()) == sorted(expand(fields['NodeList'])), f'ranks {hosts}, NodeList {fields["NodeList"]}')
    ok, detail, _ = run_dir_done(out, STEPS)
    check('straight: run directory finished', ok, detail)
    return out


def preempted_run(c, work, submit):
    """USR1 after 20 logged steps; the requeued job restarts with its first node excluded."""
    job_id, out = submit('preempted')
    c.wait_for(job_id, lambda f: finished(f) or len(logged(out)) >= 20, '20 steps in', timeout=120)
    c.client('scancel', '--batch', '--signal=USR1', job_id)
    fields = c.wait_for(job_id, lambda f: finished(f) or (f['JobState'] == 'PENDING' and f['Restarts'] == '1'),
                        'requeued')
    check('preempted: requeued after USR1', fields['JobState'] == 'PENDING', f'{fields["JobState"]} '
          f'restarts {fields["Restarts"]}')
    if fields['JobState'] != 'PENDING':
        return out
    first = rank_hosts(segments((work / 'preempted.out').read_text())[0])
    excluded = first.get(0, 'node1')
    # A later second than the requeue: a launch in the same second as the old credential's
    # revocation fails ("Job credential revoked"; see tests/slurm/check_slurm.py).
    time.sleep(2)
    c.client('scontrol', 'update', f'JobId={job_id}', 'StartTime=now', f'ExcNodeList={excluded}')
    fields, log = completed(c, work, job_id, 'preempted')
    runs = segments(log)
    check('preempted: two runs of the job, the second as restart 1', len(runs) == 2 and 'restart 1' in runs[-1],
          f'{len(runs)} runs')
    if len(runs) != 2:
        return out
    second = rank_hosts(runs[1])
    check('preempted: first run had 2 ranks on 2 hosts', len(set(first.values())) == 2, f'ranks {first}')
    exits = re.findall(r'srun: error: (\S+): task (\d+): Exited with exit code (\d+)', runs[0])
    check('preempted: USR1 reached the ranks on both nodes, each exited 138 (checkpoint written)',
          sorted((h, int(t)) for h, t, rc in exits if rc == '138') == sorted((h, r) for r, h in first.items()),
          f'srun saw {exits}, ranks were {first}')
    check(f'preempted: restart on another node set, without {excluded}',
          len(set(second.values())) == 2 and excluded not in second.values() and
          set(second.values()) != set(first.values()), f'first {sorted(first.values())}, then '
          f'{sorted(second.values())}, NodeList {fields["NodeList"]}')
    stopped = re.search(r'stopped by signal 10 after step (\d+)', runs[0])
    resumed = re.search(r'resumed from (\S+) \(step (\d+),', runs[1])
    step = int(stopped.group(1)) if stopped else -1
    check('preempted: the restart resumed from the checkpoint USR1 wrote (not step 1)',
          stopped is not None and resumed is not None and 0 < step < STEPS and
          resumed.group(1) == str(out / f'step-{step}') and int(resumed.group(2)) == step,
          f'stopped {stopped and stopped.group(0)}; resumed {resumed and resumed.group(0)}')
    steps = [m['step'] for m in metrics(out)]
    check(f'preempted: metrics.jsonl holds steps 1..{STEPS} once each', steps == list(range(1, STEPS + 1)),
          f'{len(steps)} lines, first {steps[:3]}, last {steps[-3:]}')
    ok, detail, ev = run_dir_done(out, STEPS)
    trained = ev.get('profile', {}).get('steps')
    check('preempted: finished, the restart trained only the remaining steps', ok and trained == STEPS - step,
          f'{detail}; restart trained {trained} steps (want {STEPS} - {step})')
    return out


def gpu_template(c, work, train):
    """slurm/train-gpu.sbatch on fake GPUs: CPU overrides train; as written the ranks need CUDA."""
    script = ROOT / 'slurm/train-gpu.sbatch'
    request = ['-N', 2, '--gpus-per-node=1', '--ntasks-per-node=1', '--cpus-per-task=2']
    out = work / 'gpu-template-cpu'
    job_id = c.sbatch(*request, '-o', work / 'gpu-template-cpu.out', script, *train, '--train.max_steps', 5,
                      '--run.output_dir', out, '--train.device', 'cpu', '--train.backend', 'mpi', cwd=ROOT)
    _, log = completed(c, work, job_id, 'gpu-template-cpu')
    lines = re.findall(r'\[rank \d+/\d+\] host (\S+), local rank \d+, (\d+) threads, backend (\w+)', log)
    check('train-gpu.sbatch, device overridden to cpu: 1 rank per node on 2 hosts, 2 threads each (2 CPUs / 1 task)',
          len({h for h, _, _ in lines}) == 2 and [t for _, t, _ in lines] == ['2', '2'], f'preflight {lines}')
    seen = re.findall(r'GPUs on .*', log)
    check('train-gpu.sbatch: the batch host saw its fake GPU (CUDA_VISIBLE_DEVICES)',
          re.fullmatch(r'GPUs on node\d: 0 \(1 per node, 1 tasks here\)', seen[0] if seen else '') is not None,
          str(seen))
    ok, detail, _ = run_dir_done(out, 5)
    check('train-gpu.sbatch, device overridden to cpu: run directory finished', ok, detail)
    if shutil.which('nvidia-smi'):
        print('[skip] train-gpu.sbatch as written: this machine has a GPU driver, the ranks may well start')
        return
    job_id = c.sbatch(*request, '-o', work / 'gpu-template.out', script, *train, '--run.output_dir',
                      work / 'gpu-template', cwd=ROOT)
    fields = c.wait_for(job_id, finished, 'finished')
    log = (work / 'gpu-template.out').read_text()
    refused = re.search(r'rank \d: train.device = cuda: no CUDA device is visible', log)
    check('train-gpu.sbatch as written (cuda, nccl) without a CUDA device: the ranks refuse, job FAILED, no requeue',
          fields['JobState'] == 'FAILED' and fields['Restarts'] == '0' and refused is not None,
          f'{fields["JobState"]} restarts {fields["Restarts"]}; {refused and refused.group(0)}' +
          ('' if refused else '\n' + log[-1500:]))


def sbatch_arithmetic(work):
    """train.sbatch's count of tasks and CPUs per task on an uneven allocation, which the cluster
    here cannot make (its nodes are alike): srun is a stub that prints its arguments."""
    stub = work / 'stub-bin'
    stub.mkdir()
    (stub / 'srun').write_text('#!/bin/sh\necho "srun $*"\n')
    (stub / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f'{stub}:{os.environ["PATH"]}', SLURM_JOB_NODELIST='n[1-4]',
               SLURM_TASKS_PER_NODE='2(x3),1', SLURM_JOB_CPUS_PER_NODE='8(x3),3', SLURM_RESTART_COUNT='1')
    proc = subprocess.run(['bash', ROOT / 'slurm/train.sbatch', 'job.ini'], env=env, capture_output=True, text=True)
    want = ['(4 nodes) with 7 tasks, restart 1; 3 threads per task', 'srun --mpi=pmix --ntasks=7 --cpus-per-task=3 ']
    check('train.sbatch on tasks 2(x3),1 and CPUs 8(x3),3: 7 ranks, min(8/2, 3/1) = 3 CPUs each',
          proc.returncode == 0 and all(w in proc.stdout for w in want), proc.stdout + proc.stderr)


def expand(nodelist):
    """node[2-3] / node1,node3 -> names (the few forms this cluster produces)."""
    m = re.fullmatch(r'(\D+)\[(.*)\]', nodelist)
    if not m:
        return nodelist.split(',')
    names = []
    for part in m.group(2).split(','):
        lo, _, hi = part.partition('-')
        names += [f'{m.group(1)}{i}' for i in range(int(lo), int(hi or lo) + 1)]
    return names


def logged(out):
    path = out / 'metrics.jsonl'
    return path.read_text().splitlines() if path.exists() else []


def net_namespaces(c):
    """The network namespace ids of the cluster's hosts (to look for them after the teardown)."""
    return {c.bed.run(h, ['readlink', '/proc/self/ns/net']).stdout.strip() for h in c.bed.names}


def left_behind(namespaces, marker):
    """Named namespaces and processes in `namespaces`, and processes whose environment holds
    `marker` (our SLURM_CONF: daemons, slurmstepd, ranks)."""
    left = [f'netns {p.name}' for p in pathlib.Path('/run/netns').glob('*')
            if f'net:[{p.stat().st_ino}]' in namespaces]
    for proc in pathlib.Path('/proc').glob('[0-9]*'):
        try:
            if slurm_hosts.running(int(proc.name)) and (os.readlink(proc / 'ns/net') in namespaces or
                                                        marker.encode() in (proc / 'environ').read_bytes()):
                left.append(f'process {proc.name} {(proc / "comm").read_text().strip()}')
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return left


def main():
    started = time.time()
    args, angle, work, _ = setup(__doc__, '--tiny', '--data-dir')
    if os.geteuid() != 0:
        print('skipped: network namespaces and slurmd need root')
        return SKIP
    if not slurm_hosts.install_slurm():  # (launch/setup.sh installs them: a failure here is a failure)
        print('FAIL: Slurm (slurm-wlm, munge) is not installed and could not be installed')
        return 1
    os.environ['ANGLE_BIN'] = str(angle)
    os.environ.pop('ANGLE_THREADS', None)
    sbatch_arithmetic(work)
    train = [ROOT / 'jobs/stsb.ini', '--model.path', args.tiny, '--model.pooling', 'cls', '--model.max_length', 64,
             '--data.train', f'stsb:{args.data_dir}/STS/STSBenchmark/sts-train.csv', '--data.dev', '',
             '--data.test', '', '--train.log_every', 1, '--train.global_batch', 8]

    try:
        with slurm_hosts.cluster(work / 'cluster', nodes=3, gpus=1) as c:
            print(f'cluster up in {time.time() - started:.1f} s: {c.node_states()}, controller ctl '
                  f'{c.bed.addr["ctl"]}, SLURM_CONF {c.conf}')
            namespaces = net_namespaces(c)

            def submit(name):
                out = work / name
                return c.sbatch('-N', 2, '-n', 2, '-o', work / f'{name}.out', ROOT / 'slurm/train.sbatch', *train,
                                '--train.max_steps', STEPS, '--run.output_dir', out, cwd=ROOT), out

            straight = straight_run(c, work, submit)
            preempted = preempted_run(c, work, submit)
            a, b = final_params(straight), final_params(preempted)
            check('preempted across nodes == uninterrupted: final parameters bitwise equal',
                  a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), f'{len(a)} tensors')
            gpu_template(c, work, train)
            queue = c.queue()
            check('no job left in the queue', queue == '', queue or 'empty')
    except testbed.Unavailable as e:
        print(f'skipped: {e}')
        return SKIP
    check('after the teardown: no daemon, job process or namespace of the cluster left',
          not (left := left_behind(namespaces, str(c.conf))), str(left) if left else 'none')
    print(f'hosts_slurm: {time.time() - started:.0f} s')
    if failures:
        sys.exit('FAILED:\n  ' + '\n  '.join(failures))
    return 0


if __name__ == '__main__':
    sys.exit(main())
