#!/usr/bin/env python3
"""`angle train` across hosts: Open MPI over TCP between emulated hosts (tests/hosts/testbed.py:
network namespaces on a bridge, own hostnames, orted started through an rsh agent in a clean
environment). Skipped (77) where namespaces cannot be made.
  a. 2 hosts x 2 ranks = 1 host x 4 ranks = 1 rank: per-step losses and final parameters within
     1e-5 (tiny BERT, 4 steps), with the model's dropout on and with dropout 0 (2 x 2 = 1 x 4 too);
  b. resume on other hosts: a 2 x 2 run stopped by SIGUSR1 (checkpoint, exit 138) resumes on
     {node3} alone, and on {node2, node3} (stopped again) then on {node3}: 4 -> 1 and 4 -> 2 -> 1
     ranks each end within 1e-5 of the uninterrupted 2 x 2 run (dropout on; also dropout 0);
  c. fail fast: an error injected on a rank of node2, and kill -9 of a rank process on node2, end
     every rank on every host within 5 s, with that rank's message (for the kill, mpirun's naming
     the rank and node2); no angle process is left on any host;
  d. rejected at start-up, before step 1, by an error line naming a host: a node-local
     run.output_dir (the same path, a different directory per host: 'run.output_dir', 'not
     shared'), and a training file that differs between hosts ('differs between ranks', the file);
  e. local ranks: --map-by node puts ranks 0, 2 on node1 and 1, 3 on node2, local ranks 0/1 per
     host (the preflight lines); by slot 0, 1 on node1;
  f. launch/angle-mpirun across hosts (1 rank on node1, 2 on node2): each rank's threads = its
     own host's cores / its host's ranks, ANGLE_* forwarded to the other host, no --oversubscribe;
     on one node: --oversubscribe only when -np exceeds the cores;
  g. hybrid sharding across hosts: 2 hosts x 2 ranks with shard.replicate node (a shard group per
     host, stage 3) = 1 rank within 1e-5 (dropout 0); replicate node on hosts with 2 and 1 ranks is
     rejected before step 1, every host's count named."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'cli'))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
import testbed  # noqa: E402
from expect import setup  # noqa: E402
from hosts_runs import (PREFLIGHT, ROOT, Checks, compare_runs, error_lines, logged_steps, preflight, start, tiny_job,  # noqa: E402
                        train, wait_steps)

SKIP = 77  # CTest SKIP_RETURN_CODE
HOSTS = ['node1', 'node2', 'node3']
RESUME_STEPS = 24


def check_invariance(bed, checks, ctx, dropout):
    """a (and e by slot): the same 4 steps on 1 rank, 1 host x 4 and 2 hosts x 2."""
    label = 'dropout on' if dropout is None else f'dropout {dropout}'
    outs = {}
    for name, hosts, per_host in (('1', ['node3'], 1), ('1x4', ['node1'], 4), ('2x2', ['node1', 'node2'], 2)):
        out = outs[name] = ctx.work / f'invariance-{label.replace(" ", "")}-{name}'
        rc, stderr = train(bed, hosts, per_host, ctx.job(4, dropout) + ['--run.output_dir', str(out)])
        if not checks(f'{label}: {name} run', rc == 0, f'exit {rc} {error_lines(stderr)[:1]}'):
            return
        if name == '2x2' and dropout == 0:  # (the placement is the same in both)
            seen = preflight(stderr)
            expected = {r: (hosts[r // 2], r % 2) for r in range(4)}
            checks('e. by slot: ranks 0, 1 on node1 and 2, 3 on node2, local ranks 0/1',
                   {r: v[:2] for r, v in seen.items()} == expected, f'preflight {seen}')
    for name in ('1x4', '2x2'):
        compare_runs(checks, f'a. {label}: {name} = 1 rank', outs[name], outs['1'])
    # the same world size on one host or two: crossing hosts alone changes nothing
    compare_runs(checks, f'a. {label}: 2x2 = 1x4', outs['2x2'], outs['1x4'])


def stop_after(bed, checks, label, hosts, per_host, job, out, steps):
    """Starts `job`, sends SIGUSR1 to mpirun once `steps` steps are logged. Returns the ranks'
    stderr when they wrote a checkpoint and exited 138 before the end, else None."""
    run = start(bed, hosts, per_host, job)
    reached = wait_steps(out, run, steps)
    if reached:
        run.proc.send_signal(signal.SIGUSR1)
    rc = run.wait(120)
    stopped = logged_steps(out)
    ok = reached and stopped < RESUME_STEPS and (out / f'step-{stopped}' / 'COMPLETE').exists()
    ok = checks(f'{label}: stopped on {"+".join(hosts)} by SIGUSR1', ok and rc == 138,
                f'exit {rc}, {stopped} of {RESUME_STEPS} steps, checkpoint step-{stopped} complete: {ok} '
                f'{error_lines(run.stderr)[:1]}')
    return run.stderr if ok else None


def resumed(checks, label, rc, stderr, expected):
    """The run resumed (not restarted: that would match the uninterrupted run too) from the
    checkpoint `expected` = (step, ranks that wrote it, ranks now)."""
    m = re.search(r'resumed from \S+ \(step (\d+), written by (\d+) rank\(s\), now (\d+)\)', stderr or '')
    got = tuple(map(int, m.groups())) if m else None
    return checks(label, rc in (0, 138) and got == expected,
                  f'exit {rc}, resumed from (step, ranks then, now) {got}, expected {expected} {error_lines(stderr)[:1]}')


def check_resume(bed, checks, ctx, dropout):
    """b: 2 x 2 -> {node3} x 1, and 2 x 2 -> {node2, node3} x 1 -> {node3} x 1, vs 2 x 2 straight."""
    label = 'dropout on' if dropout is None else f'dropout {dropout}'
    tag = label.replace(' ', '')
    job = ctx.job(RESUME_STEPS, dropout)
    straight = ctx.work / f'resume-{tag}-straight'
    rc, stderr = train(bed, ['node1', 'node2'], 2, job + ['--run.output_dir', str(straight)])
    if not checks(f'b. {label}: uninterrupted 2 x 2 run', rc == 0, f'exit {rc} {error_lines(stderr)[:1]}'):
        return
    chain = ctx.work / f'resume-{tag}-chain'
    if not stop_after(bed, checks, f'b. {label}', ['node1', 'node2'], 2, job + ['--run.output_dir', str(chain)],
                      chain, 3):
        return
    first = logged_steps(chain)
    branch = ctx.work / f'resume-{tag}-branch'
    shutil.copytree(chain, branch, symlinks=True)
    resume = ['--run.resume', 'auto']
    rc, stderr = train(bed, ['node3'], 1, job + ['--run.output_dir', str(branch), *resume])
    if resumed(checks, f'b. {label}: resumed on node3 alone', rc, stderr, (first, 4, 1)):
        compare_runs(checks, f'b. {label}: 2 x 2 -> node3 x 1 = uninterrupted', branch, straight)
    stderr = stop_after(bed, checks, f'b. {label}: resumed', ['node2', 'node3'], 1,
                        job + ['--run.output_dir', str(chain), *resume], chain, first + 3)
    if not resumed(checks, f'b. {label}: resumed on node2+node3', 138 if stderr else None, stderr, (first, 4, 2)):
        return
    second = logged_steps(chain)
    rc, stderr = train(bed, ['node3'], 1, job + ['--run.output_dir', str(chain), *resume])
    if resumed(checks, f'b. {label}: resumed again on node3 alone', rc, stderr, (second, 2, 1)):
        compare_runs(checks, f'b. {label}: 2 x 2 -> node2+node3 x 1 -> node3 x 1 = uninterrupted', chain, straight)


def all_gone(bed, since, limit):
    """Seconds from `since` until no angle process is left on any host (None: some still after `limit`)."""
    while time.time() - since <= limit:
        if not any(bed.pids(h, 'angle') for h in HOSTS):
            return time.time() - since
        time.sleep(0.05)
    return None


def ended_within(bed, checks, label, run, since, message):
    """The job exits non-zero and every host is free of angle processes within 5 s of `since`;
    stderr has a line (not a preflight line) matching the regex `message`."""
    try:
        run.proc.wait(timeout=max(0.1, since + 5 - time.time()))
    except subprocess.TimeoutExpired:
        pass
    exited = run.proc.poll()
    gone = all_gone(bed, since, 5)
    run.wait(30)
    left = {h: bed.pids(h, 'angle') for h in HOSTS}
    shown = [line for line in run.stderr.splitlines() if re.search(message, line) and not PREFLIGHT.search(line)]
    checks(label, exited not in (None, 0) and gone is not None and shown and not any(left.values()),
           f'mpirun exit {run.proc.returncode} within 5 s: {exited is not None}; all ranks gone after '
           f'{gone if gone is None else round(gone, 2)} s; angle processes left {left}; message {shown[:1]}')


# As launch/angle-mpirun runs mpirun: no 1 s wait between SIGTERM and SIGKILL on each node, in which
# ranks blocked on a dead peer can do nothing (Open MPI's default makes a 2-host teardown ~4.2 s).
TEARDOWN = ['--mca', 'odls_base_sigkill_timeout', '0']


def check_fail_fast(bed, checks, ctx):
    """c: rank 3 (on node2) fails at step 3; then rank 3 is killed with -9 mid-run."""
    job = ctx.job(100000, 0)
    run = start(bed, ['node1', 'node2'], 2, job + ['--run.output_dir', str(ctx.work / 'fault')],
                ['-x', 'ANGLE_FAULT=3:step:3'] + TEARDOWN)
    since = run.first(r'injected fault', 120)
    if since is None:
        run.wait(10)
        checks('c. error on rank 3 (node2) at step 3', False, f'no fault message: {run.stderr[-800:]}')
    else:
        ended_within(bed, checks, 'c. error on rank 3 (node2) at step 3 ends every rank', run, since,
                     r'error: rank 3: injected fault at step:3')
    out = ctx.work / 'kill'
    run = start(bed, ['node1', 'node2'], 2, job + ['--run.output_dir', str(out)], TEARDOWN)
    victim = None
    if wait_steps(out, run, 3):
        for pid in bed.pids('node2', 'angle'):
            if b'OMPI_COMM_WORLD_RANK=3' in pathlib.Path(f'/proc/{pid}/environ').read_bytes().split(b'\0'):
                victim = pid
    if victim is None:
        run.wait(1)
        checks('c. kill -9 of rank 3 on node2', False, f'rank 3 not found on node2: {run.stderr[-800:]}')
        return
    since = time.time()
    os.kill(victim, signal.SIGKILL)
    ended_within(bed, checks, 'c. kill -9 of rank 3 on node2 ends every rank, a message names rank 3 and node2',
                 run, since, r'\brank 3\b.*\bnode2\b|\bnode2\b.*\brank 3\b')


def rejected_at_start(bed, checks, label, job, out_dirs, expected):
    """2 hosts x 1 rank: non-zero exit, no step logged in any of `out_dirs`, an error line (the
    first; each rank that finds the problem may print one) with every `expected` fragment and a host."""
    rc, stderr = train(bed, ['node1', 'node2'], 1, job)
    errors = error_lines(stderr)
    steps = {str(d): logged_steps(d) for d in out_dirs}
    named = errors and all(e in errors[0] for e in expected) and any(h in errors[0] for h in HOSTS)
    checks(label, rc != 0 and not any(steps.values()) and named,
           f'exit {rc}, steps logged {steps}, error lines {errors[:2]} (expected {expected} and a host name)'
           + ('' if errors else f'; stderr ends {stderr[-400:]!r}'))


def check_start_up(bed, checks, ctx):
    """d: node-local run.output_dir; a training file that differs between hosts."""
    local = ctx.node_local / 'run'
    rejected_at_start(bed, checks, 'd. node-local run.output_dir rejected before step 1',
                      ctx.job(2, 0) + ['--run.output_dir', str(local)],
                      [bed.private_dir(h, local) for h in HOSTS], ['run.output_dir', 'not shared'])
    shared = ctx.work / 'per-host-data' / 'train.csv'
    shared.parent.mkdir()
    shutil.copy(ctx.train_csv, shared)
    lines = shared.read_text().split('\n')
    last = max(i for i, line in enumerate(lines) if line.strip())  # past the first 64 KiB: the tail is hashed too
    fields = lines[last].split('\t')
    fields[4] = '1' if fields[4] == '0' else '0'  # its label: the same size
    lines[last] = '\t'.join(fields)
    other = ctx.work / 'other-train.csv'  # (no host name in it: the message must name one itself)
    other.write_text('\n'.join(lines))
    bed.bind('node2', shared, other)
    out = ctx.work / 'per-host-data-run'
    rejected_at_start(bed, checks, 'd. training file differing between hosts rejected before step 1',
                      [str(ctx.angle)] + tiny_job(ctx.tiny, shared, 2, 0) + ['--run.output_dir', str(out)], [out],
                      ['differs between ranks', 'train.csv'])


def check_hybrid(bed, checks, ctx):
    """g: HSDP with a shard group per host; uneven hosts refused."""
    out = ctx.work / 'hsdp-2x2'
    rc, stderr = train(bed, ['node1', 'node2'], 2, ctx.job(4, 0) + ['--shard.stage', '3', '--shard.replicate', 'node',
                                                                    '--run.output_dir', str(out)])
    if checks('g. HSDP 2x2 run', rc == 0, f'exit {rc} {error_lines(stderr)[:1]}'):
        compare_runs(checks, 'g. HSDP (replicate node, stage 3) 2x2 = 1 rank', out,
                     ctx.work / 'invariance-dropout0-1')
    uneven = ctx.work / 'hsdp-uneven'
    rc, stderr = train(bed, ['node1', 'node2'], [2, 1], ctx.job(2, 0, batch=6) + ['--shard.replicate', 'node',
                                                                         '--run.output_dir', str(uneven)])
    errors = error_lines(stderr)
    named = errors and all(f in errors[0] for f in ('shard.replicate = node', '2 (the node of rank 0)',
                                                    '1 (the node of rank 2)'))
    checks('g. replicate node on hosts with 2 and 1 ranks rejected before step 1',
           rc != 0 and not logged_steps(uneven) and named, f'exit {rc}, error lines {errors[:2]}')


def check_map_by_node(bed, checks, ctx):
    """e: --map-by node: ranks alternate between the hosts, local ranks 0/1 on each."""
    rc, stderr = train(bed, ['node1', 'node2'], 2, ctx.job(1, 0) + ['--run.output_dir', str(ctx.work / 'by-node')],
                       ['--map-by', 'node'])
    seen = preflight(stderr)
    expected = {r: (['node1', 'node2'][r % 2], r // 2) for r in range(4)}
    checks('e. --map-by node: ranks 0, 2 on node1 and 1, 3 on node2, local ranks 0/1',
           rc == 0 and {r: v[:2] for r, v in seen.items()} == expected, f'exit {rc}, preflight {seen}')


def check_wrapper(bed, checks, ctx):
    """f: launch/angle-mpirun with the bed's placement: node1 x 1, node2 x 2."""
    wrapper = str(ROOT / 'launch/angle-mpirun')
    cores = int(bed.run('node2', ['env', '-u', 'OMP_NUM_THREADS', 'nproc']).stdout)
    placement = ['-np', '3', *bed.mpirun_options(['node1', 'node2'], [1, 2])]
    job = ctx.job(1, 0, batch=6)[1:] + ['--run.output_dir', str(ctx.work / 'wrapper')]  # the wrapper adds angle
    env = dict(os.environ, ANGLE_BIN=str(ctx.angle))
    env.pop('ANGLE_THREADS', None)
    dry = bed.run('node1', [wrapper, *placement, '--', *job], env=dict(env, ANGLE_MPIRUN_DRY='1')).stdout
    checks('f. wrapper across hosts: no --oversubscribe, --bind-to none', '--oversubscribe' not in dry
           and '--bind-to none' in dry, dry[:160])
    proc = bed.run('node1', [wrapper, *placement, '--', *job], env=env, timeout=300)
    seen = preflight(proc.stderr)
    expected = {0: ('node1', cores), 1: ('node2', max(1, cores // 2)), 2: ('node2', max(1, cores // 2))}
    checks(f'f. wrapper: threads = own host cores ({cores}) / ranks on that host',
           proc.returncode == 0 and {r: (v[0], v[2]) for r, v in seen.items()} == expected,
           f'exit {proc.returncode}, preflight {seen}, expected {expected} {error_lines(proc.stderr)[:1]}')
    proc = bed.run('node1', [wrapper, *placement, '--', *job], env=dict(env, ANGLE_FAULT='2:startup'), timeout=120)
    checks('f. wrapper forwards ANGLE_* to the other host (ANGLE_FAULT on rank 2, node2)',
           proc.returncode != 0 and 'rank 2: injected fault at startup' in proc.stderr, f'exit {proc.returncode} '
           f'{error_lines(proc.stderr)[:1]}')
    for np, oversubscribe in ((cores * 2, True), (cores, False)):
        dry = subprocess.run([wrapper, '-np', str(np), '--', *job], env=dict(env, ANGLE_MPIRUN_DRY='1'),
                             capture_output=True, text=True).stdout
        checks(f'f. wrapper on one node, -np {np} on {cores} cores: --oversubscribe {oversubscribe}',
               ('--oversubscribe' in dry) == oversubscribe, dry[:120])


class Context:
    def __init__(self, args, angle, work):
        self.angle, self.work, self.tiny = angle, work, args.tiny
        self.train_csv = pathlib.Path(args.data_dir) / 'STS/STSBenchmark/sts-train.csv'
        self.node_local = work / 'node-local'  # a private directory on every host, at this one path

    def job(self, steps, dropout, batch=8):
        return [str(self.angle)] + tiny_job(self.tiny, self.train_csv, steps, dropout, batch)


def main():
    args, angle, work, _ = setup(__doc__, '--tiny', '--data-dir')
    ctx, checks = Context(args, angle.resolve(), work), Checks()
    begin = time.time()
    try:
        with testbed.Testbed(len(HOSTS), names=HOSTS, private=[ctx.node_local], base=work) as bed:
            print(f'test bed: hosts {bed.addr} on {bed.subnet}', flush=True)
            for dropout in (0, None):
                check_invariance(bed, checks, ctx, dropout)
            for dropout in (0, None):
                check_resume(bed, checks, ctx, dropout)
            check_fail_fast(bed, checks, ctx)
            check_map_by_node(bed, checks, ctx)
            check_wrapper(bed, checks, ctx)
            check_start_up(bed, checks, ctx)
            check_hybrid(bed, checks, ctx)
    except testbed.Unavailable as e:
        print(f'skipped: {e}')
        return SKIP
    print(f'{len(checks.failures)} failed; {time.time() - begin:.0f} s')
    checks.exit_status()
    print('multi-host checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
