#!/usr/bin/env python3
"""Step time of the default job across 2 emulated hosts x 1 rank x 1 thread at several link rates,
measured beside `angle plan`'s prediction for that link. Hosts are network namespaces on a bridge
(tests/hosts/testbed.py), Open MPI over TCP between them, the link limited by tc tbf (`rate=`,
both directions). The job is jobs/default.ini (all-MiniLM-L6-v2, STS-B + SICK train, global batch
32, max length 128, stage 2, the model's dropout on), its dev/test evaluations left out: only
steps are timed.

Measured (rank 0's metrics.jsonl, one line per step): step = the sum of its step profile
(`phase_s`: every second of the step is in one phase), exposed communication = `comm_wait_s`
(time blocked on collectives: what overlap did not hide); medians over the steps after the warm-up.

Planned: `mpirun angle plan --calibrate` runs inside each bed across the two hosts (FLOP/s of one
thread, optimizer and copy rates, alpha/beta of all-gathers over that link). The prediction uses
the unlimited link's calibration with --ranks 2 --per-node 1 and
  nominal:    --link inter=RATE (the tbf rate in GB/s; unlimited: the calibrated beta itself),
  calibrated: --link inter=BETA,latency=ALPHA, as --calibrate measured them on that link,
and --cores = this machine's cores / hosts: the emulated hosts share one machine's cores, so
each has only its share (with all of them the planner would hide MPI traffic behind a core that
the other host is in fact using). The plan is the median over --plan-steps steps' data.
Exits 77 where namespaces cannot be made (no root, no iproute2, no netns).

  python3 tests/bench/link_speed.py [--angle build/angle] [--work /tmp/link-bench] [--steps 20]
      [--skip 2] [--rates unlimited,1gbit,100mbit] [--plan-steps 3] [--set KEY=VALUE]"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/hosts'))
sys.path.insert(0, str(ROOT / 'tests/bench'))
import testbed  # noqa: E402
from distributed_step_time import machine  # noqa: E402
from hosts_runs import THREADS, error_lines, preflight  # noqa: E402

SKIP = 77  # as the multi-host tests: namespaces unavailable
HOSTS = ['node1', 'node2']
UNLIMITED = 'unlimited'


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--work', default='/tmp/link-bench', help='emptied first; runs and calibrations go here')
    ap.add_argument('--steps', type=int, default=20, help='training steps per rate')
    ap.add_argument('--skip', type=int, default=2, help='warm-up steps left out of the medians')
    ap.add_argument('--rates', default=f'{UNLIMITED},1gbit,100mbit', help='tbf rates (e.g. 500mbit), comma-separated')
    ap.add_argument('--plan-steps', type=int, default=3, help='steps whose data the plan is made for (median)')
    ap.add_argument('--cores', type=int, default=None, help='cores per emulated host (default: cores / hosts)')
    ap.add_argument('--set', action='append', default=[], help='extra job override KEY=VALUE (e.g. shard.stage=3)')
    args = ap.parse_args()
    rates = args.rates.split(',')
    if UNLIMITED not in rates:  # the planner's calibration comes from the unlimited link
        rates.insert(0, UNLIMITED)
    args.rates = [UNLIMITED] + [r for r in rates if r != UNLIMITED]
    bad = [r for r in args.rates if r != UNLIMITED and not re.fullmatch(r'[\d.]+[kmg]?bit', r.lower())]
    if bad:
        ap.error(f'--rates: {bad}: expected {UNLIMITED} or a tc rate such as 1gbit, 100mbit')
    if args.skip >= args.steps:
        ap.error('--skip must leave at least one timed step')
    args.cores = args.cores or max(1, (os.cpu_count() or 1) // len(HOSTS))
    args.angle = pathlib.Path(args.angle).resolve()
    return args


def job_args(args):
    """The default job as launch/default-job.sh runs it, without dev/test (their evaluations
    would be timed as steps' phases and cost minutes), one thread per rank."""
    job = ['--job', ROOT / 'jobs/default.ini', '--data.dev', '', '--data.test', '', '--train.threads', 1]
    for kv in args.set:
        key, value = kv.split('=', 1)
        job += [f'--{key}', value]
    return [str(a) for a in job]


def gbytes_per_s(rate):
    """A tc rate ('1gbit', '100mbit') in GB/s, as --link takes it."""
    number, unit = re.fullmatch(r'([\d.]+)([kmg]?)bit', rate.lower()).groups()
    return float(number) * {'': 1, 'k': 1e3, 'm': 1e6, 'g': 1e9}[unit] / 8 / 1e9


def mpirun(bed, argv, timeout):
    """`argv` on 1 rank of each host, from the repository (the job's relative paths); returns
    (exit status, stderr). A run past `timeout` is killed (status None)."""
    proc = bed.mpirun(HOSTS, 1, [str(a) for a in argv], mpi_args=[*THREADS, '--wdir', str(ROOT)], cwd=ROOT,
                      stdout=subprocess.DEVNULL)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        return None, stderr
    return proc.returncode, stderr


def calibrate(bed, args, path):
    """`angle plan --calibrate` across the two hosts; returns the machine file's figures."""
    rc, stderr = mpirun(bed, [args.angle, 'plan', *job_args(args), '--calibrate', path], timeout=600)
    if rc != 0:
        sys.exit(f'calibration failed (exit {rc}): {error_lines(stderr)[:1] or stderr[-2000:]}')
    return json.loads(pathlib.Path(path).read_text())


def train(bed, args, out):
    """`args.steps` steps of the job logging every step; returns the ranks' preflight lines."""
    cmd = [args.angle, 'train', *job_args(args), '--train.max_steps', args.steps, '--train.log_every', 1,
           '--run.output_dir', out]
    # 100 Mbit moves MiniLM's ~90 MB of stage-2 traffic per step in about 7 s: allow far more.
    rc, stderr = mpirun(bed, cmd, timeout=300 + 60 * args.steps)
    if rc != 0:
        sys.exit(f'training failed (exit {rc}) in {out}: {error_lines(stderr)[:1] or stderr[-2000:]}')
    return preflight(stderr)


def measured(out, skip):
    """Medians over steps skip+1.. of rank 0's metrics.jsonl: step wall time, exposed communication,
    and the bytes each step handed to collectives."""
    lines = [json.loads(line) for line in (pathlib.Path(out) / 'metrics.jsonl').read_text().splitlines()]
    # log_every 1: each line's phase_s (seconds per step over its window) is that step's profile
    timed = [m for m in lines if 'loss' in m and m['step'] > skip]
    if not timed:
        sys.exit(f'{out}/metrics.jsonl: no step after the first {skip}')
    return {'step_s': statistics.median(sum(m['phase_s'].values()) for m in timed),
            'exposed_s': statistics.median(m['comm_wait_s'] for m in timed),
            'comm_bytes': statistics.median(m['comm_bytes'] for m in timed), 'steps': len(timed),
            'first': timed[0]['step'], 'last': timed[-1]['step']}


def plan_steps(args):
    """`--plan-steps` steps spread over the timed ones (their data sets the plan's bytes and FLOPs)."""
    first, last, n = args.skip + 1, args.steps, max(1, args.plan_steps)
    return sorted({round(first + i * (last - first) / max(1, n - 1)) for i in range(n)})


def plan(args, machine_file, link):
    """`angle plan` for 2 ranks, 1 per node, on `link`: medians over plan_steps of (step, exposed
    communication, communication bytes)."""
    figures = []
    for step in plan_steps(args):
        cmd = [args.angle, 'plan', *job_args(args), '--ranks', 2, '--per-node', 1, '--cores', args.cores,
               '--machine', machine_file, '--step', step, '--json'] + (['--link', link] if link else [])
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f'angle plan failed: {proc.stderr[-2000:]}')
        j = json.loads(proc.stdout)
        figures.append((j['time']['step_s'], j['time']['exposed_comm_s'], j['comm_bytes']['total']))
    return tuple(statistics.median(f[i] for f in figures) for i in range(3))


def link_spec(calibration):
    """The --link that states a calibration's own alpha and beta (inter: the hosts' link)."""
    return f'inter={calibration["beta_bytes_per_s"] / 1e9:.6g},latency={calibration["alpha_s"] * 1e6:.6g}'


def run_rate(args, work, rate):
    """One bed with `rate` on every link: calibration there, then the training run."""
    tag = rate.lower()
    with testbed.Testbed(len(HOSTS), names=HOSTS, rate=None if rate == UNLIMITED else rate, base=work) as bed:
        begin = time.time()
        machine_file = work / f'machine-{tag}.json'
        calibration = calibrate(bed, args, machine_file)
        print(f'  {rate}: calibrated alpha {calibration["alpha_s"] * 1e6:.0f} us, beta '
              f'{calibration["beta_bytes_per_s"] / 1e6:.1f} MB/s, {calibration["flops_per_thread"] / 1e9:.1f} '
              f'GFLOP/s per thread', flush=True)
        seen = train(bed, args, work / f'run-{tag}')
        result = measured(work / f'run-{tag}', args.skip)
        # the machine is shared: a busy spell shows in the load average beside the figures
        print(f'  {rate}: {result["step_s"] * 1000:.0f} ms/step, exposed {result["exposed_s"] * 1000:.0f} ms/step '
              f'({time.time() - begin:.0f} s; load average {os.getloadavg()[0]:.1f})', flush=True)
    return {'rate': rate, 'machine_file': machine_file, 'calibration': calibration, 'preflight': seen, **result}


def predict(args, rows):
    """Adds each rate's two predictions, both from the unlimited link's calibration (FLOP/s and
    rates of this machine; only the link differs)."""
    base = rows[0]['machine_file']
    for row in rows:
        nominal = None if row['rate'] == UNLIMITED else f'inter={gbytes_per_s(row["rate"]):.6g}'
        row['plan_nominal'] = plan(args, base, nominal)
        row['plan_calibrated'] = plan(args, base, link_spec(row['calibration']))


def fmt_ms(seconds):
    return f'{seconds * 1000:.0f}'


def gap(planned, measured_):
    return f'{(planned - measured_) / measured_:+.0%}' if measured_ > 0 else 'n/a'


def print_table(args, rows):
    threads = sorted({v[2] for row in rows for v in row['preflight'].values()})
    hosts = sorted({v[0] for row in rows for v in row['preflight'].values()})
    r0 = rows[0]
    print(f'\nmachine: {machine()}; {len(HOSTS)} emulated hosts ({", ".join(hosts)}) x 1 rank x '
          f'{"/".join(map(str, threads))} thread(s); the planner told {args.cores} core(s) per host')
    print(f'default job (jobs/default.ini, no dev/test), steps {r0["first"]}..{r0["last"]} of {args.steps} (medians); '
          f'plan: median of steps {plan_steps(args)}, calibrated on the unlimited link')
    print('\n| link | measured step | measured exposed comm. | plan, nominal link: step / exposed (step gap) '
          '| plan, link as calibrated: step / exposed (step gap) | link as calibrated | comm. MB/step measured / planned |')
    print('|---|---|---|---|---|---|---|')
    for row in rows:
        nominal, calibrated, cal = row['plan_nominal'], row['plan_calibrated'], row['calibration']
        print(f'| {row["rate"]} | {fmt_ms(row["step_s"])} ms | {fmt_ms(row["exposed_s"])} ms '
              f'| {fmt_ms(nominal[0])} / {fmt_ms(nominal[1])} ms ({gap(nominal[0], row["step_s"])}) '
              f'| {fmt_ms(calibrated[0])} / {fmt_ms(calibrated[1])} ms ({gap(calibrated[0], row["step_s"])}) '
              f'| {cal["beta_bytes_per_s"] / 1e6:.1f} MB/s, {cal["alpha_s"] * 1e6:.0f} us '
              f'| {row["comm_bytes"] / 1e6:.1f} / {nominal[2] / 1e6:.1f} |')


def fresh_work(path):
    """The bench's work directory, emptied; mpirun allowed as root, one thread per rank."""
    work = pathlib.Path(path)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMP_NUM_THREADS='1')
    return work


def main():
    args = parse_args()
    work = fresh_work(args.work)
    print(f'machine: {machine()}', flush=True)
    rows = []
    try:
        for rate in args.rates:
            rows.append(run_rate(args, work, rate))
    except testbed.Unavailable as e:
        print(f'skipped: emulated hosts unavailable: {e}')
        return SKIP
    predict(args, rows)
    print_table(args, rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
