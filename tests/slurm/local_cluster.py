"""A single-node Slurm cluster for a test (slurm/local-cluster.sh), torn down whatever happens, and
the few client calls the tests need: submit, job state, wait."""
import contextlib
import os
import pathlib
import re
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'slurm/local-cluster.sh'
PIDFILES = ('slurmd.pid', 'slurmctld.pid', 'munge/munged.pid')


def free_port_pair():
    """A port P with P and P + 1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(('127.0.0.1', port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError('no two adjacent free ports')


def running(pid):
    """Alive and not a zombie (PID 1 may reap a daemon's exited parent late)."""
    try:
        return pathlib.Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def local_cluster(directory):
    """Brings the cluster up under `directory`, sets SLURM_CONF, yields the daemons' pids; on exit
    stops them and raises if any is still running."""
    directory = pathlib.Path(directory)
    subprocess.run([str(SCRIPT), 'up', str(directory), '--port', str(free_port_pair())], check=True)
    pids = [int((directory / f).read_text()) for f in PIDFILES if (directory / f).exists()]
    previous = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(directory / 'slurm.conf')
    try:
        yield pids
    finally:
        subprocess.run([str(SCRIPT), 'down', str(directory)], check=False)
        if previous is None:
            os.environ.pop('SLURM_CONF', None)
        else:
            os.environ['SLURM_CONF'] = previous
        left = [p for p in pids if running(p)]
        if left:
            raise RuntimeError(f'Slurm daemons still running after down: {left}')


def sbatch(*args, cwd=ROOT):
    """Submits; returns the job id."""
    proc = subprocess.run(['sbatch', '--parsable', *[str(a) for a in args]], capture_output=True, text=True,
                          cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f'sbatch failed: {proc.stderr.strip()}')
    return proc.stdout.strip().split(';')[0]


def job(job_id):
    """scontrol's fields of one job (JobState, Restarts, ExitCode, NumTasks, ...)."""
    text = subprocess.run(['scontrol', 'show', 'job', '-o', str(job_id)], capture_output=True, text=True,
                          check=True).stdout
    return dict(re.findall(r'(\w+)=(\S*)', text))


def wait_for(job_id, condition, what, timeout=180):
    """Polls the job every 0.1 s until condition(fields) holds; returns the fields."""
    deadline = time.time() + timeout
    while True:
        fields = job(job_id)
        if condition(fields):
            return fields
        if time.time() > deadline:
            raise RuntimeError(f'job {job_id}: not {what} after {timeout} s: {fields.get("JobState")}')
        time.sleep(0.1)


def finished(fields):
    return fields['JobState'] in ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY')
