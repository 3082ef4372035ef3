#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying out slurm/*.sbatch and for the test
# suite: its own munged (own key and socket), slurmctld and slurmd, all state under DIR.
#   slurm/local-cluster.sh up DIR [--port P]   start (P: slurmctld port, slurmd uses P+1; default
#                                              6817) and wait until the node is idle
#   slurm/local-cluster.sh down DIR            stop all three daemons (SIGTERM, then SIGKILL after
#                                              15 s) and wait until they are gone
# Then: export SLURM_CONF=DIR/slurm.conf; sbatch ... (every Slurm client honours SLURM_CONF).
# Needs root (slurmd launches the jobs) and Debian's slurm-wlm + munge (launch/apt-install.sh).
# The configuration follows ../shared/reference/toolchain-notes.md §4: no cgroups, pmix for srun,
# no accounting.
set -euo pipefail
usage() { sed -n '2,10p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dir=$2
shift 2
port=6817
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    *) echo "local-cluster.sh: unknown option $1" >&2; usage ;;
  esac
done
say() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

pidfiles=(slurmd.pid slurmctld.pid munge/munged.pid)  # stop order: clients of munge first

stop_all() {
  local pids=() f p
  for f in "${pidfiles[@]}"; do
    [ -s "$dir/$f" ] || continue
    p=$(cat "$dir/$f")
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" && pids+=("$p"); fi
  done
  # slurmd/slurmctld take ~5 s to exit; the ones that do not are killed.
  for _ in $(seq 150); do
    local alive=()
    for p in "${pids[@]}"; do
      # a daemon that exited may stay a zombie until PID 1 reaps it: that counts as gone
      if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]; then alive+=("$p"); fi
    done
    [ ${#alive[@]} -eq 0 ] && { rm -f "${pidfiles[@]/#/$dir/}"; return 0; }
    pids=("${alive[@]}")
    sleep 0.1
  done
  say "still running after 15 s, killing: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  rm -f "${pidfiles[@]/#/$dir/}"
}

case $action in
  down)
    [ -d "$dir" ] || die "$dir: no such cluster directory"
    stop_all
    say "stopped (state kept in $dir)"
    ;;
  up)
    [ "$(id -u)" = 0 ] || die "needs root: slurmd starts the jobs' processes"
    for bin in munged mungekey slurmctld slurmd sinfo; do
      command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || die "$bin not found: launch/apt-install.sh slurm-wlm munge"
    done
    for f in "${pidfiles[@]}"; do
      if [ -s "$dir/$f" ] && kill -0 "$(cat "$dir/$f")" 2>/dev/null; then die "$dir already runs a cluster ($f)"; fi
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    install -d -m 0700 "$dir/munge"
    install -d "$dir/state" "$dir/spool" "$dir/log"
    [ -f "$dir/munge/munge.key" ] || /usr/sbin/mungekey --create --keyfile="$dir/munge/munge.key"
    cpus=$(OMP_NUM_THREADS= OMP_THREAD_LIMIT= nproc)  # nproc obeys OMP_NUM_THREADS otherwise
    memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    cat > "$dir/slurm.conf" <<EOF
# written by slurm/local-cluster.sh
ClusterName=angle-local
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    trap 'say "start-up failed; stopping what started"; stop_all' ERR
    /usr/sbin/munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
    /usr/sbin/slurmctld
    /usr/sbin/slurmd -N localhost
    for _ in $(seq 300); do
      [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && break
      sleep 0.1
    done
    trap - ERR
    if [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" != idle ]; then stop_all; die "node not idle after 30 s; see $dir/log"; fi
    say "up: export SLURM_CONF=$dir/slurm.conf  (stop: slurm/local-cluster.sh down $dir)"
    ;;
  *) usage ;;
esac
