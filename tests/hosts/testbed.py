"""Emulated hosts on one machine, for multi-host tests. Each host is a network namespace joined to
a Linux bridge by a veth pair, with an address on a private /24 chosen here (10.231.X.0/24, one
that nothing on the machine uses), its own hostname and /etc/hosts (every host's name -> its
address; the real /etc/hosts is never touched), optional per-host private directories and an
optional link rate. Needs root, iproute2 (`ip`, `tc`) and util-linux (`unshare`).

    import testbed
    try:
        with testbed.Testbed(3, private=['/data/local']) as bed:
            proc = bed.mpirun(['node1', 'node2'], 2, ['/path/angle', 'train', ...])
            ...
    except testbed.Unavailable as e:      # raised on entry only: no root, no `ip`, no namespaces
        print(f'skipped: {e}'); sys.exit(77)

API (the rest is internal):
  Testbed(n, names=None, private=(), rate=None, base=None)
      `n` hosts named node1..nodeN (or `names`); `private`: absolute paths that are a separate,
      initially empty directory on every host; `rate`: a tbf rate limit on every host's link, both
      directions (e.g. '100mbit'); `base`: the parent of the bed's own temporary directory.
  bed.names, bed.addr[name]    host names in order; their addresses. bed.subnet: '10.231.X.0/24'
  bed.command(host, argv)      `argv` wrapped to run on `host` (namespace, hostname, mounts)
  bed.popen(host, argv, **kw)  subprocess.Popen of that, in its own session; killed at exit
  bed.run(host, argv, **kw)    subprocess.run of that (text output captured unless kw says else)
  bed.bind(host, target, src)  from the next launch on, the existing path `target` shows `src` on `host`
  bed.private_dir(host, path)  where private path `path` of `host` really is (to look inside)
  bed.mpirun_options(hosts, per_host)  mpirun options placing `per_host` ranks (an int, or one
      per host) on each of `hosts`: TCP on the bed's subnet, orted started on the other hosts
      through the bed's rsh agent (which runs it there in a fresh environment, as ssh would)
  bed.mpirun(hosts, per_host, argv, mpi_args=(), **kw)  bed.popen of mpirun on hosts[0]
  bed.pids(host, comm=None)    processes in `host`'s namespace (only those named `comm`)
Everything it made (namespaces, links, qdiscs, processes, mount points, files) is removed on
exit, also after an exception, Ctrl-C or SIGTERM; what a crashed bed left (its owner process is
gone) is removed when the next bed starts. Several beds can run at once (each its own subnet)."""
import fcntl
import ipaddress
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

STATE = pathlib.Path('/run/angle-testbed')  # one file per live bed: owner pid + its directory
OWNED = re.compile(r'^atb(\d+)[-vpb]')       # netns atbX-NAME; links atbXvI, atbXpI, atbXbr
LOGIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class Unavailable(Exception):
    """Namespaces cannot be made here (the test should exit 77: skipped)."""


def _sh(*argv, check=True):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc


def _start_time(pid):
    try:
        return pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return None


def _rate_bits(rate):
    number, unit = re.fullmatch(r'([\d.]+)\s*([kmg]?)bit', rate.lower()).groups()
    return float(number) * {'': 1, 'k': 1e3, 'm': 1e6, 'g': 1e9}[unit]


class Testbed:
    def __init__(self, n, names=None, private=(), rate=None, base=None):
        self.names = list(names or [f'node{i + 1}' for i in range(n)])
        self.private = [pathlib.Path(p) for p in private]
        self.rate, self.base = rate, base
        self.binds = {name: {} for name in self.names}  # host -> {target: source}
        self.procs, self.made_dirs, self.index, self.dir = [], [], None, None
        self._old_handlers = {}

    # --- public API ---
    @property
    def subnet(self):
        return f'10.231.{self.index}.0/24'

    def command(self, host, argv):
        return [str(self.dir / 'enter' / host)] + [str(a) for a in argv]

    def popen(self, host, argv, **kw):
        proc = subprocess.Popen(self.command(host, argv), start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def run(self, host, argv, **kw):
        if 'stdout' not in kw and 'stderr' not in kw:
            kw.setdefault('capture_output', True)
        kw.setdefault('text', True)
        return subprocess.run(self.command(host, argv), start_new_session=True, **kw)

    def bind(self, host, target, source):
        self.binds[host][str(target)] = str(source)
        self._write_enter(host)

    def private_dir(self, host, path):
        return self.dir / 'private' / host / str(path).lstrip('/')

    def mpirun_options(self, hosts, per_host):
        counts = per_host if isinstance(per_host, (list, tuple)) else [per_host] * len(hosts)
        return ['--host', ','.join(f'{h}:{c}' for h, c in zip(hosts, counts)),
                '--mca', 'plm_rsh_agent', str(self.dir / 'rsh-agent'), '--mca', 'plm_rsh_no_tree_spawn', '1',
                '--mca', 'btl', 'self,vader,tcp', '--mca', 'btl_tcp_if_include', self.subnet,
                '--mca', 'oob_tcp_if_include', self.subnet]

    def mpirun(self, hosts, per_host, argv, mpi_args=(), **kw):
        counts = per_host if isinstance(per_host, (list, tuple)) else [per_host] * len(hosts)
        cmd = ['mpirun', '-np', sum(counts), *self.mpirun_options(hosts, counts), *mpi_args, *argv]
        env = dict(kw.pop('env', os.environ), OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
        kw.setdefault('stdout', subprocess.PIPE)
        kw.setdefault('stderr', subprocess.PIPE)
        return self.popen(hosts[0], cmd, env=env, text=True, **kw)

    def pids(self, host, comm=None):
        out = _sh('ip', 'netns', 'pids', self._ns(host), check=False).stdout.split()
        found = []
        for pid in map(int, out):
            try:
                name = pathlib.Path(f'/proc/{pid}/comm').read_text().strip()
            except FileNotFoundError:
                continue
            if comm is None or name == comm:
                found.append(pid)
        return found

    # --- set-up and tear-down ---
    def __enter__(self):
        if os.geteuid() != 0:
            raise Unavailable('network namespaces need root')
        missing = [t for t in ('ip', 'tc', 'unshare', 'mount') if not shutil.which(t)]
        if missing:
            raise Unavailable(f'{", ".join(missing)} not installed')
        self._trap_signals()
        try:
            self._claim_index()
            self._build()
            check = self.run(self.names[-1], ['hostname'])
            if check.returncode != 0 or check.stdout.strip() != self.names[-1]:
                raise Unavailable(f'unshare --uts --mount in a namespace failed: {check.stderr.strip()}')
        except subprocess.CalledProcessError as e:
            self._teardown()
            raise Unavailable(f'{" ".join(map(str, e.cmd))}: {e.stderr.strip()}') from None
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc):
        self._teardown()
        return False

    def _ns(self, host):
        return f'atb{self.index}-{host}'

    def _trap_signals(self):
        """SIGTERM/SIGHUP (CTest's timeout, a closed terminal) unwind through __exit__ like Ctrl-C."""
        def stop(signum, _frame):
            raise SystemExit(128 + signum)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, stop)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _claim_index(self):
        """Under a lock: remove what dead beds left, then take a subnet index nobody uses."""
        STATE.mkdir(parents=True, exist_ok=True)
        with open(STATE / 'lock', 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            live = set()
            for f in STATE.glob('*.json'):
                try:
                    state = json.loads(f.read_text())
                except ValueError:  # its owner died while writing it
                    state = {}
                if state.get('pid') and _start_time(state['pid']) == state.get('start'):
                    live.add(int(f.stem))
                else:
                    shutil.rmtree(state.get('dir', '/nonexistent'), ignore_errors=True)
                    f.unlink()
            self._remove_leftovers(live)
            used = self._used_networks()
            for index in range(1, 255):
                net = ipaddress.ip_network(f'10.231.{index}.0/24')
                if index not in live and not any(net.overlaps(u) for u in used):
                    break
            else:
                raise Unavailable('no free 10.231.X.0/24 subnet')
            self.index = index
            self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f'atb{index}-', dir=self.base))
            (STATE / f'{index}.json').write_text(json.dumps(
                {'pid': os.getpid(), 'start': _start_time(os.getpid()), 'dir': str(self.dir)}))

    @staticmethod
    def _used_networks():
        nets = []
        for cmd in (['ip', '-4', '-o', 'addr'], ['ip', '-4', 'route', 'show', 'table', 'all']):
            for word in _sh(*cmd).stdout.split():
                try:
                    nets.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    pass
        return nets

    @staticmethod
    def _remove_leftovers(live, only=None):
        """Processes, namespaces and links named atbX... of every X not in `live` (or X == `only`)."""
        def dead(name):
            m = OWNED.match(name)
            return m and (int(m.group(1)) == only if only is not None else int(m.group(1)) not in live)
        for ns in [line.split()[0] for line in _sh('ip', 'netns', 'list', check=False).stdout.splitlines()]:
            if dead(ns):
                for _ in range(50):
                    pids = _sh('ip', 'netns', 'pids', ns, check=False).stdout.split()
                    if not pids:
                        break
                    for pid in pids:
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.1)
                _sh('ip', 'netns', 'delete', ns, check=False)
        for line in _sh('ip', '-o', 'link', check=False).stdout.splitlines():
            name = line.split(':')[1].strip().split('@')[0]
            if dead(name):
                _sh('ip', 'link', 'delete', name, check=False)

    def _build(self):
        x = self.index
        _sh('ip', 'link', 'add', f'atb{x}br', 'type', 'bridge')
        _sh('ip', 'link', 'set', f'atb{x}br', 'up')
        hosts_file = self.dir / 'hosts'
        hosts_file.write_text('127.0.0.1 localhost\n' + ''.join(
            f'10.231.{x}.{i + 1} {name}\n' for i, name in enumerate(self.names)))
        self.addr = {name: f'10.231.{x}.{i + 1}' for i, name in enumerate(self.names)}
        for i, name in enumerate(self.names, 1):
            ns, outer, inner = self._ns(name), f'atb{x}v{i}', f'atb{x}p{i}'
            _sh('ip', 'netns', 'add', ns)
            _sh('ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner)
            _sh('ip', 'link', 'set', inner, 'netns', ns)
            _sh('ip', 'link', 'set', outer, 'master', f'atb{x}br', 'up')
            inside = ['ip', 'netns', 'exec', ns]
            _sh(*inside, 'ip', 'link', 'set', inner, 'name', 'eth0')
            _sh(*inside, 'ip', 'addr', 'add', f'{self.addr[name]}/24', 'dev', 'eth0')
            _sh(*inside, 'ip', 'link', 'set', 'eth0', 'up')
            _sh(*inside, 'ip', 'link', 'set', 'lo', 'up')
            if self.rate:  # both directions: into the host (outer end) and out of it (inner end)
                burst = str(max(32 * 1024, int(_rate_bits(self.rate) / 8 / 100)))
                tbf = ['tc', 'qdisc', 'add', 'dev', '{dev}', 'root', 'tbf', 'rate', self.rate, 'burst', burst,
                       'latency', '100ms']
                _sh(*[a.format(dev=outer) for a in tbf])
                _sh(*inside, *[a.format(dev='eth0') for a in tbf])
            for path in self.private:
                self.private_dir(name, path).mkdir(parents=True)
                self.binds[name][str(path)] = str(self.private_dir(name, path))
        for path in self.private:  # mount points must exist; remove those made here at exit
            missing = [p for p in [path, *path.parents] if not p.exists()]
            path.mkdir(parents=True, exist_ok=True)
            self.made_dirs.extend(missing)
        (self.dir / 'enter').mkdir()
        for name in self.names:
            self._write_enter(name)
        self._write_agent()

    def _write_enter(self, host):
        """enter/HOST: runs its arguments on HOST. A new UTS and mount namespace per launch (in the
        host's network namespace): hostname, /etc/hosts and the binds; the children of the launched
        process (orted's ranks) share them."""
        mounts = [('/etc/hosts', str(self.dir / 'hosts')), *self.binds[host].items()]
        # A mount that would hide another one's source (a private /tmp over a source in /tmp) goes last.
        mounts.sort(key=lambda m: any(src.startswith(m[0].rstrip('/') + '/') for _, src in mounts))
        setup = ' && '.join([f'hostname {shlex.quote(host)}'] + [
            f'mount --bind {shlex.quote(str(src))} {shlex.quote(str(dst))}' for dst, src in mounts])
        script = self.dir / 'enter' / host
        script.write_text('#!/bin/sh\n' + shlex.join(
            ['exec', 'ip', 'netns', 'exec', self._ns(host), 'unshare', '--uts', '--mount', '--propagation', 'private',
             'sh', '-c', f'{setup} && exec "$@"', host]) + ' "$@"\n')
        script.chmod(0o755)

    def _write_agent(self):
        """Open MPI's rsh agent: `agent [ssh options] HOST COMMAND...`; like ssh, it runs the words of
        COMMAND through a shell on HOST in a fresh login-like environment (only PATH, HOME, USER):
        what a rank needs must come through mpirun's -x, as on real hosts."""
        cases = ''.join(f'  {name}|{self.addr[name]}) name={name} ;;\n' for name in self.names)
        agent = self.dir / 'rsh-agent'
        agent.write_text(f'''#!/bin/sh
while [ "${{1#-}}" != "$1" ]; do shift; done
host=$1; shift
case "$host" in
{cases}  *) echo "rsh-agent: unknown host $host" >&2; exit 255 ;;
esac
exec {shlex.quote(str(self.dir / 'enter'))}/"$name" env -i PATH={LOGIN_PATH} HOME="$HOME" USER="${{USER:-root}}" \\
  sh -c "$*"
''')
        agent.chmod(0o755)

    def _teardown(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.index is not None:
            self._remove_leftovers(set(), only=self.index)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for path in self.made_dirs:  # deepest first
            try:
                path.rmdir()
            except OSError:
                pass
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.index is not None:
            (STATE / f'{self.index}.json').unlink(missing_ok=True)
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()
