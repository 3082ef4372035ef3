#!/usr/bin/env python3
"""Gradient reduction across a slow link: 2 emulated hosts x 2 ranks x 1 thread (tests/hosts/testbed.py,
Open MPI over TCP, every host's link limited by tc tbf to --rate both ways), the default job
(all-MiniLM-L6-v2 on STS-B + SICK train, stage 2, no dev/test) with a smaller step (--set), three ways:
  per-parameter  the build before per-unit reduction (--old, e.g. 22c8551's; the row is left out
                 without it): a reduce to each owning rank per parameter piece (about 200
                 collectives per step for MiniLM)
  per-unit       this build, shard.replicate 1: one reduce-scatter per unit over all 4 ranks
  HSDP           this build, shard.replicate node: reduce-scatter inside each host, then one
                 all-reduce per unit across the hosts (half the ranks' traffic crosses the link)
Measured (rank 0's metrics.jsonl, one line per step, medians after the warm-up): step time (the
sum of the step profile), exposed communication (`comm_wait_s`) and collectives (`comm_calls`).

Planned: `angle plan --job` for 4 ranks, 2 per host, calibrated in this bed: `--calibrate` across
the hosts (1 rank each: the link's alpha and beta, the FLOP/s of one thread) and within one host
(2 ranks: the shared-memory alpha and beta), passed as --link intra=..,inter=..,latency=..,
inter_latency=..,inter_links=1 (a host has one link, which its two ranks share); --cores = this
machine's cores / hosts (the hosts share its cores). The gap is
(planned - measured) / measured step time. Exits 77 where namespaces cannot be made.

  python3 tests/bench/hsdp_link.py [--old /work/base/build/angle] [--angle build/angle] [--rate 200mbit]
      [--steps 10] [--skip 3] [--set KEY=VALUE]"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests/hosts'))
sys.path.insert(0, str(ROOT / 'tests/bench'))
import testbed  # noqa: E402
from distributed_step_time import machine  # noqa: E402
from hosts_runs import THREADS, error_lines  # noqa: E402
from link_speed import fresh_work  # noqa: E402

HOSTS = ['node1', 'node2']
SMALLER = ['train.global_batch=16', 'model.max_length=64']


def job_args(args, extra=()):
    job = ['--job', ROOT / 'jobs/default.ini', '--data.dev', '', '--data.test', '', '--train.threads', 1,
           '--shard.stage', 2]
    for kv in SMALLER + args.set:
        key, value = kv.split('=', 1)
        job += [f'--{key}', value]
    return [str(a) for a in job + list(extra)]


def run(bed, hosts, per_host, argv, timeout):
    proc = bed.mpirun(hosts, per_host, [str(a) for a in argv], mpi_args=[*THREADS, '--wdir', str(ROOT)], cwd=ROOT,
                      stdout=subprocess.DEVNULL)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        sys.exit(f'timed out: {argv[:3]}')
    if proc.returncode != 0:
        sys.exit(f'failed (exit {proc.returncode}): {error_lines(stderr)[:1] or stderr[-2000:]}')


def measured(out, skip):
    lines = [json.loads(line) for line in (pathlib.Path(out) / 'metrics.jsonl').read_text().splitlines()]
    timed = [m for m in lines if 'loss' in m and m['step'] > skip]
    return {'step_s': statistics.median(sum(m['phase_s'].values()) for m in timed),
            'exposed_s': statistics.median(m['comm_wait_s'] for m in timed),
            'calls': statistics.median(m.get('comm_calls', float('nan')) for m in timed),
            'bytes': statistics.median(m['comm_bytes'] for m in timed)}


def plan(args, machine_file, link, replicate):
    figures = []
    for step in range(args.skip + 1, args.steps + 1, max(1, (args.steps - args.skip) // 3)):
        cmd = [args.angle, 'plan', *job_args(args, ['--shard.replicate', replicate]), '--ranks', 4, '--per-node', 2,
               '--cores', args.cores, '--machine', machine_file, '--link', link, '--step', step, '--json']
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f'angle plan failed: {proc.stderr[-2000:]}')
        j = json.loads(proc.stdout)
        figures.append((j['time']['step_s'], j['time']['exposed_comm_s']))
    return tuple(statistics.median(f[i] for f in figures) for i in range(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--angle', default=str(ROOT / 'build/angle'))
    ap.add_argument('--old', help='an angle built before per-unit reduction (its row is left out without it)')
    ap.add_argument('--work', default='/tmp/hsdp-link')
    ap.add_argument('--rate', default='200mbit', help='tc tbf rate of every host link')
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--skip', type=int, default=3)
    ap.add_argument('--set', action='append', default=[], help='extra job override KEY=VALUE')
    args = ap.parse_args()
    args.cores = max(1, (os.cpu_count() or 1) // len(HOSTS))
    work = fresh_work(args.work)
    print(f'machine: {machine()}; {len(HOSTS)} emulated hosts x 2 ranks x 1 thread, links {args.rate}', flush=True)
    rows = []
    try:
        with testbed.Testbed(len(HOSTS), names=HOSTS, rate=args.rate, base=work) as bed:
            inter, intra = work / 'machine-inter.json', work / 'machine-intra.json'
            run(bed, HOSTS, 1, [args.angle, 'plan', *job_args(args), '--calibrate', inter], 900)
            run(bed, HOSTS[:1], 2, [args.angle, 'plan', *job_args(args), '--calibrate', intra], 900)
            a, b = json.loads(inter.read_text()), json.loads(intra.read_text())
            link = (f'intra={b["beta_bytes_per_s"] / 1e9:.6g},inter={a["beta_bytes_per_s"] / 1e9:.6g},'
                    f'latency={b["alpha_s"] * 1e6:.6g},inter_latency={a["alpha_s"] * 1e6:.6g},inter_links=1')
            print(f'calibrated: across the link alpha {a["alpha_s"] * 1e6:.0f} us, beta {a["beta_bytes_per_s"] / 1e6:.1f} '
                  f'MB/s; within a host alpha {b["alpha_s"] * 1e6:.0f} us, beta {b["beta_bytes_per_s"] / 1e6:.0f} MB/s',
                  flush=True)
            for label, angle, replicate in (('per-parameter (old build)', args.old, None),
                                            ('per-unit, replicate 1', args.angle, '1'),
                                            ('HSDP, replicate node', args.angle, 'node')):
                if angle is None:
                    continue
                out = work / label.split()[0].replace(',', '')
                extra = ['--shard.replicate', replicate] if replicate else []
                run(bed, HOSTS, 2, [angle, 'train', *job_args(args, extra), '--train.max_steps', args.steps,
                                    '--train.log_every', 1, '--run.output_dir', out], 300 + 120 * args.steps)
                row = {'label': label, **measured(out, args.skip)}
                row['plan'] = plan(args, inter, link, replicate) if replicate else None
                rows.append(row)
                print(f'  {label}: {row["step_s"] * 1000:.0f} ms/step, exposed {row["exposed_s"] * 1000:.0f} ms', flush=True)
    except testbed.Unavailable as e:
        print(f'skipped: emulated hosts unavailable: {e}')
        return 77
    print(f'\njob: jobs/default.ini, stage 2, {", ".join(SMALLER + args.set)}, no dev/test; steps {args.skip + 1}..'
          f'{args.steps} (medians); plan link {link}')
    print('\n| reduction | step | exposed comm. | collectives / step | MB / step | plan: step / exposed (step gap) |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        planned = (f'{r["plan"][0] * 1000:.0f} / {r["plan"][1] * 1000:.0f} ms '
                   f'({(r["plan"][0] - r["step_s"]) / r["step_s"]:+.0%})' if r['plan'] else '—')
        calls = '—' if r['calls'] != r['calls'] else f'{r["calls"]:.0f}'
        print(f'| {r["label"]} | {r["step_s"] * 1000:.0f} ms | {r["exposed_s"] * 1000:.0f} ms | {calls} '
              f'| {r["bytes"] / 1e6:.1f} | {planned} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
