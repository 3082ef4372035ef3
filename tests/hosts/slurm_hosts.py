"""A multi-node Slurm cluster on emulated hosts (testbed.Testbed), for tests: a controller host `ctl`
(munged + slurmctld) and compute hosts node1..nodeN (one slurmd each, NodeName = the host's name,
NodeAddr = its address), all state under one directory of the shared filesystem; stopped and
checked for leftovers at the end, also after a failure.

    with slurm_hosts.cluster(work / 'cluster', nodes=3) as c:    # raises testbed.Unavailable
        job_id = c.sbatch('-N', 2, 'slurm/train.sbatch', ...)     # if namespaces cannot be made
        c.wait_for(job_id, slurm_hosts.finished, 'finished')
    # here every daemon has stopped (raises otherwise) and the hosts are gone

Why it looks the way it does:
  - The bridge of the bed has no address in the root namespace, so the Slurm clients (sbatch,
    squeue, scontrol) run on `ctl` like a login node's would (Cluster.client).
  - One munged, on `ctl`; its socket is a path on the shared filesystem, which every host reaches
    (unix sockets ignore network namespaces), so all hosts share one key as a real cluster does.
  - /tmp is private per host: Slurm's pmix plugin and Open MPI keep per-node files there under
    names that are the same on every node (spmix_appdir_<uid>_<job>.<step>). So the bed's own
    files go under `directory`, not under /tmp.
  - Per-node spool, pid and log files through slurm.conf's %n, because the hosts share the disk.
  - `ip netns exec` mounts a fresh /sys without cgroup file systems, where slurmd's cgroup
    autodetection fails ("No filesystem mounted on /sys/fs/cgroup"); naming the plugin
    (CgroupPlugin=cgroup/v1) skips the detection, and proctrack/linuxproc + task/none (as in
    slurm/local-cluster.sh) never use cgroups.
  - Every node is configured with all of the machine's cores (CPUs = its CPU count, 2 here; no
    more, or slurmd would report fewer than configured and Slurm drain the node): the emulated
    nodes share the same cores.
  - gpus > 0 gives every node that many fake GPUs (gres/gpu on links to /dev/null): enough for
    Slurm to schedule and launch `--gpus-per-node` jobs such as slurm/train-gpu.sbatch (with
    CUDA_VISIBLE_DEVICES set as on a GPU node), not for CUDA."""
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'slurm'))
import testbed  # noqa: E402
from local_cluster import finished, running  # noqa: E402,F401  (finished: re-exported for tests)

CONTROLLER = 'ctl'
SLURM_PACKAGES = ('slurm-wlm', 'munge')


def cpus_of_machine():
    return len(os.sched_getaffinity(0))


class Cluster:
    """The daemons of one cluster on a started bed, and the client calls a test needs."""

    def __init__(self, bed, directory, nodes, cpus, gpus):
        self.bed, self.dir, self.nodes, self.cpus, self.gpus = bed, pathlib.Path(directory), nodes, cpus, gpus
        self.conf = self.dir / 'slurm.conf'
        self.pidfiles = [self.dir / f'slurmd-{n}.pid' for n in nodes] + \
            [self.dir / 'slurmctld.pid', self.dir / 'munge/munged.pid']  # stop order: munge's clients first

    # --- clients, run on the controller host ---
    def client(self, *argv, check=True, cwd=None):
        proc = self.bed.run(CONTROLLER, [str(a) for a in argv], cwd=cwd)
        if check and proc.returncode != 0:
            raise RuntimeError(f'{" ".join(map(str, argv))}: rc {proc.returncode}: {proc.stderr.strip()}')
        return proc

    def sbatch(self, *args, cwd=None):
        """Submits; returns the job id."""
        return self.client('sbatch', '--parsable', *args, cwd=cwd).stdout.strip().split(';')[0]

    def job(self, job_id):
        """scontrol's fields of one job (JobState, Restarts, ExitCode, NodeList, ...)."""
        text = self.client('scontrol', 'show', 'job', '-o', job_id).stdout
        return dict(re.findall(r'(\w+)=(\S*)', text))

    def wait_for(self, job_id, condition, what, timeout=180):
        """Polls the job every 0.2 s until condition(fields) holds; returns the fields."""
        deadline = time.time() + timeout
        while True:
            fields = self.job(job_id)
            if condition(fields):
                return fields
            if time.time() > deadline:
                raise RuntimeError(f'job {job_id}: not {what} after {timeout} s: {fields.get("JobState")}')
            time.sleep(0.2)

    def queue(self):
        return self.client('squeue', '-h', '-o', '%i %T %N', check=False).stdout.strip()

    def node_states(self):
        out = self.client('sinfo', '-h', '-N', '-o', '%N %t', check=False).stdout.split()
        return dict(zip(out[::2], out[1::2]))

    # --- start and stop ---
    def write_config(self):
        d = self.dir
        for sub in ('state', 'log', *[f'spool-{n}' for n in self.nodes]):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / 'munge').mkdir(mode=0o700, exist_ok=True)
        if not (d / 'munge/munge.key').exists():
            subprocess.run(['/usr/sbin/mungekey', '--create', f'--keyfile={d}/munge/munge.key'], check=True)
        gres = f' Gres=gpu:{self.gpus}' if self.gpus else ''
        nodes = ''.join(f'NodeName={n} NodeAddr={self.bed.addr[n]} CPUs={self.cpus} Sockets=1 '
                        f'CoresPerSocket={self.cpus} ThreadsPerCore=1 RealMemory=2000{gres} State=UNKNOWN\n'
                        for n in self.nodes)
        self.conf.write_text(f'''# written by tests/hosts/slurm_hosts.py
ClusterName=angle-hosts
SlurmctldHost={CONTROLLER}({self.bed.addr[CONTROLLER]})
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge/munge.socket
CredType=cred/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
{"GresTypes=gpu" if self.gpus else ""}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool-%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
{nodes}PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
''')
        (d / 'cgroup.conf').write_text('CgroupPlugin=cgroup/v1\n')
        if self.gpus:
            (d / 'dev').mkdir(exist_ok=True)
            for i in range(self.gpus):  # slurmd wants character devices; any one will do
                (d / f'dev/nvidia{i}').unlink(missing_ok=True)
                (d / f'dev/nvidia{i}').symlink_to('/dev/null')
            (d / 'gres.conf').write_text(f'Name=gpu File={d}/dev/nvidia[0-{self.gpus - 1}]\n')

    def start(self):
        self.write_config()
        os.environ['SLURM_CONF'] = str(self.conf)  # inherited by every daemon, client and job
        d = self.dir
        self.bed.run(CONTROLLER, ['/usr/sbin/munged', '--force', f'--socket={d}/munge/munge.socket',
                                  f'--key-file={d}/munge/munge.key', f'--pid-file={d}/munge/munged.pid',
                                  f'--log-file={d}/log/munged.log', f'--seed-file={d}/munge/munged.seed'], check=True)
        self.bed.run(CONTROLLER, ['/usr/sbin/slurmctld'], check=True)
        for node in self.nodes:
            self.bed.run(node, ['/usr/sbin/slurmd', '-N', node], check=True)
        deadline = time.time() + 30
        while (states := self.node_states()) != {n: 'idle' for n in self.nodes}:
            if time.time() > deadline:
                raise RuntimeError(f'nodes not idle after 30 s: {states}; logs: {self.log_tails()}')
            time.sleep(0.2)

    def log_tails(self, lines=5):
        return {f.name: f.read_text().splitlines()[-lines:] for f in sorted((self.dir / 'log').glob('*.log'))}

    def stop(self):
        """Cancels what is still queued, stops the daemons (SIGTERM, SIGKILL after 15 s) and returns
        {host: pids} of every process still running on a host afterwards (nothing, normally)."""
        if self.queue():
            self.client('scancel', '--full', '--user', 'root', check=False)
            deadline = time.time() + 30
            while self.queue() and time.time() < deadline:
                time.sleep(0.2)
        pids = []
        for f in self.pidfiles:
            if f.exists() and running(pid := int(f.read_text())):
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
        deadline = time.time() + 15  # slurmd and slurmctld take ~5 s
        while any(running(p) for p in pids) and time.time() < deadline:
            time.sleep(0.1)
        for p in pids:
            if running(p):
                print(f'[slurm_hosts] daemon {p} still running after 15 s: SIGKILL')
                os.kill(p, signal.SIGKILL)
        deadline = time.time() + 10  # job processes the cancel has not ended yet
        while (left := self.leftovers()) and time.time() < deadline:
            time.sleep(0.2)
        return left

    def leftovers(self):
        left = {h: [p for p in self.bed.pids(h) if running(p)] for h in self.bed.names}
        return {h: [f'{p} {comm(p)}' for p in pids] for h, pids in left.items() if pids}


def comm(pid):
    try:
        return pathlib.Path(f'/proc/{pid}/comm').read_text().strip()
    except FileNotFoundError:
        return '?'


def install_slurm():
    """slurm-wlm and munge as launch/setup.sh installs them; False when that fails."""
    script = pathlib.Path(__file__).resolve().parents[2] / 'launch/apt-install.sh'
    ok = subprocess.run([str(script), *SLURM_PACKAGES]).returncode == 0
    return ok and all(pathlib.Path(f'/usr/sbin/{b}').exists() for b in ('munged', 'slurmctld', 'slurmd'))


@contextlib.contextmanager
def cluster(directory, nodes=3, cpus=None, gpus=0):
    """Brings up the bed and the cluster under `directory`, sets SLURM_CONF, yields the Cluster;
    on exit stops the daemons and raises RuntimeError if anything was still running on a host
    (the bed then removes it all the same)."""
    directory = pathlib.Path(directory).resolve()
    if pathlib.Path('/tmp') in [directory, *directory.parents]:  # the hosts' private /tmp would hide it
        raise RuntimeError(f'{directory}: the cluster (and the test work, angle, the job) must lie outside /tmp: '
                           'every emulated Slurm host has a private /tmp (clone and build elsewhere)')
    directory.mkdir(parents=True, exist_ok=True)
    names = [f'node{i + 1}' for i in range(nodes)]
    previous = os.environ.get('SLURM_CONF')
    with testbed.Testbed(nodes + 1, names=[CONTROLLER, *names], private=['/tmp'], base=directory) as bed:
        c = Cluster(bed, directory / 'slurm', names, cpus or cpus_of_machine(), gpus)
        left = {}
        try:
            c.start()
            yield c
        finally:
            left = c.stop()
            if previous is None:
                os.environ.pop('SLURM_CONF', None)
            else:
                os.environ['SLURM_CONF'] = previous
        if left:
            raise RuntimeError(f'processes still running on the hosts after the cluster stopped: {left}')
