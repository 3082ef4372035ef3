"""Helpers of the multi-host test scripts: the tiny training job, runs of it on testbed hosts,
what the ranks print, and the check list every test prints and exits with."""
import pathlib
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'mpi'))
from runs import ROOT, final_params, losses, param_distance, rel  # noqa: E402,F401

# `[rank R/N] host H, local rank L, T threads, ...`: the preflight line every rank prints at start
PREFLIGHT = re.compile(r'\[rank (\d+)/(\d+)\] host (\S+), local rank (\d+), (\d+) threads')
# Remote ranks see only what mpirun forwards (the bed's rsh agent starts orted in a clean
# environment): one compute thread per rank, as the local ranks get from the test's environment.
THREADS = ['-x', 'OMP_NUM_THREADS=1']


class Checks:
    """Every check prints [ok]/[FAIL], its label and the numbers it compared; failures collect."""

    def __init__(self):
        self.failures = []

    def __call__(self, label, ok, numbers=''):
        print(f'[{"ok" if ok else "FAIL"}] {label}: {numbers}', flush=True)
        if not ok:
            self.failures.append(f'{label}: {numbers}')
        return ok

    def exit_status(self):
        if self.failures:
            sys.exit('FAILED:\n  ' + '\n  '.join(self.failures))


def tiny_job(tiny, train_csv, steps, dropout=None, batch=8):
    """`angle train` of the tiny BERT (short sequences, no dev/test), logging every step;
    dropout None keeps the model's own (on)."""
    args = ['train', '--job', ROOT / 'jobs/stsb.ini', '--model.path', tiny, '--model.pooling', 'cls',
            '--model.max_length', 32, '--data.train', f'stsb:{train_csv}', '--data.dev', '', '--data.test', '',
            '--train.log_every', 1, '--train.global_batch', batch, '--train.max_steps', steps]
    return [str(a) for a in args + ([] if dropout is None else ['--model.dropout', dropout])]


class Watched:
    """A running mpirun whose stderr lines are read as they come, with the time each arrived."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append((time.time(), line.rstrip('\n')))

    def first(self, pattern, timeout):
        """Time of the first stderr line matching `pattern` (None after `timeout` s or at exit)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, line in list(self.lines):
                if re.search(pattern, line):
                    return t
            if self.proc.poll() is not None and not self.reader.is_alive():
                return None
            time.sleep(0.02)
        return None

    def wait(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode

    @property
    def stderr(self):
        return '\n'.join(line for _, line in self.lines)


def start(bed, hosts, per_host, job, mpi_args=()):
    proc = bed.mpirun(hosts, per_host, job, mpi_args=[*THREADS, *mpi_args], stdout=subprocess.DEVNULL)
    return Watched(proc)


def train(bed, hosts, per_host, job, mpi_args=(), timeout=300):
    """Runs `job` on `per_host` ranks of each of `hosts` to its end; returns (exit status, stderr)."""
    run = start(bed, hosts, per_host, job, mpi_args)
    return run.wait(timeout), run.stderr


def logged_steps(out):
    try:
        return len(losses(out))
    except FileNotFoundError:
        return 0


def wait_steps(out, run, steps, timeout=120):
    """Until `steps` losses are in out/metrics.jsonl (False if the run ends or time runs out)."""
    deadline = time.time() + timeout
    while logged_steps(out) < steps:
        if run.proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


def preflight(stderr):
    """{rank: (host, local rank, threads)} from the ranks' preflight lines."""
    return {int(m[1]): (m[3], int(m[4]), int(m[5])) for m in PREFLIGHT.finditer(stderr)}


def error_lines(stderr):
    return [line for line in stderr.splitlines() if ': error: ' in line]


def compare_runs(checks, label, out, reference, tolerance=1e-5):
    """Per-step losses (relative) and final parameters (relative L2) of run `out` vs `reference`."""
    try:
        a, b = losses(out), losses(reference)
        worst = max(rel(x, y) for x, y in zip(a, b)) if len(a) == len(b) and a else float('inf')
        distance = param_distance(final_params(out), final_params(reference))
    except FileNotFoundError as e:
        return checks(label, False, f'missing {e.filename}')
    return checks(label, worst <= tolerance and distance <= tolerance,
                  f'{len(a)} vs {len(b)} steps, worst loss difference {worst:.2e}, parameters {distance:.2e} '
                  f'(limit {tolerance:.0e}); losses {[round(x, 6) for x in a[:6]]}...')
