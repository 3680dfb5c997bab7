#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests and demos of utils/slurm.pl.
#
#   tools/slurm_local.sh [--port 6817] [--mem_limit auto] start <state-dir>
#   tools/slurm_local.sh stop <state-dir>
#
# start writes <state-dir>/slurm.conf (one node "localhost" with this machine's CPUs and
# memory, one partition "debug"), starts munged, slurmctld and slurmd as the current
# user (root in a container; no systemd needed), and waits until sinfo shows the node
# idle. Everything the daemons write (keys, sockets, state, logs) stays in <state-dir>.
# Point the SLURM client commands (sbatch, squeue, scontrol, and so utils/slurm.pl) at
# the cluster with:   export SLURM_CONF=<state-dir>/slurm.conf
# stop cancels the cluster's jobs and ends the three daemons by the ids in their pid
# files. Needs the Debian packages slurmctld, slurmd, slurm-client and munge
# (tools/install_system_deps.sh installs them).
#
# Jobs: select/cons_tres with CR_Core_Memory, so --cpus-per-task and --mem are
# scheduled (a job without --mem gets DefMemPerCPU = a quarter of the memory per CPU).
# --mem is enforced (--mem_limit) by task/cgroup when the cgroup v1 memory controller is
# writable here (the kernel kills the process over it; the job ends in state
# OUT_OF_MEMORY), else by jobacct_gather/linux with OverMemoryKill, sampling every second
# (slurmstepd kills the whole job: state FAILED, "exceeded memory limit" in its output).
# Job states stay queryable with "scontrol show job" for MinJobAge=300 s after the end;
# there is no accounting database (sacct is not available on this cluster).
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (slurm_local.sh:${BASH_LINENO[0]}) $*" >&2
}
usage="Usage: $0 [--port N] [--mem_limit auto|cgroup|sampling] start|stop <state-dir>
  --port N        slurmctld port; slurmd uses N+1 [6817]
  --mem_limit X   how --mem is enforced: cgroup (task/cgroup, cgroup v1 memory
                  controller), sampling (jobacct_gather OverMemoryKill, every 1 s), or
                  auto (cgroup if the memory controller is writable here) [auto]"

port=6817
mem_limit=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --port | --mem_limit | --mem-limit)
            [ $# -ge 2 ] || { echo "${usage}" >&2; exit 2; }
            if [ "$1" = --port ]; then port=$2; else mem_limit=$2; fi
            shift 2
            ;;
        --port=*) port=${1#--port=}; shift ;;
        --mem_limit=* | --mem-limit=*) mem_limit=${1#*=}; shift ;;
        -h | --help) echo "${usage}"; exit 0 ;;
        -*) echo "slurm_local.sh: unknown option $1" >&2; echo "${usage}" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 2 ] || { [ "$1" != start ] && [ "$1" != stop ]; }; then
    echo "${usage}" >&2
    exit 2
fi
if ! [[ "${port}" =~ ^[0-9]+$ ]] || [ "${port}" -lt 1024 ] || [ "${port}" -gt 65534 ]; then
    echo "slurm_local.sh: --port takes a number in 1024..65534, got '${port}'" >&2
    exit 2
fi
case "${mem_limit}" in
    auto | cgroup | sampling) ;;
    *) echo "slurm_local.sh: --mem_limit takes auto, cgroup or sampling, got '${mem_limit}'" >&2; exit 2 ;;
esac
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
conf=${dir}/slurm.conf
export SLURM_CONF=${conf}

# Ends the processes whose ids are in <pid-file>s (SIGTERM together, up to 10 s, then
# SIGKILL).
stop_pids() {
    local pidfile pid pids=() alive _
    for pidfile in "$@"; do
        if [ -s "${pidfile}" ]; then
            pid=$(cat "${pidfile}")
            kill "${pid}" 2>/dev/null && pids+=("${pid}")
        fi
        rm -f "${pidfile}"
    done
    for _ in $(seq 100); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "${pid}" 2>/dev/null && alive=1
        done
        [ "${alive}" -eq 0 ] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "${pid}" 2>/dev/null; then
            log "pid ${pid} still alive after 10 s; sending SIGKILL"
            kill -9 "${pid}" 2>/dev/null || true
        fi
    done
}

# Cancels the cluster's jobs, then ends slurmd, slurmctld and munged.
stop_cluster() {
    local jobs
    if [ -s "${dir}/slurmctld.pid" ] && kill -0 "$(cat "${dir}/slurmctld.pid")" 2>/dev/null; then
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
        if [ -n "${jobs// /}" ]; then
            log "cancelling jobs ${jobs}"
            # shellcheck disable=SC2086
            scancel ${jobs} 2>/dev/null || true
            for _ in $(seq 50); do
                [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
    fi
    stop_pids "${dir}/slurmd.pid" "${dir}/slurmctld.pid" "${dir}/munge/munged.pid"
}

if [ "${action}" = stop ]; then
    stop_cluster
    log "stopped the cluster of ${conf}"
    exit 0
fi

for tool in munged mungekey slurmctld slurmd sinfo; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
        echo "slurm_local.sh: ${tool} not found; install the Debian packages slurmctld slurmd slurm-client munge (tools/install_system_deps.sh)" >&2
        exit 1
    fi
done
if [ -s "${dir}/slurmctld.pid" ] && kill -0 "$(cat "${dir}/slurmctld.pid")" 2>/dev/null; then
    echo "slurm_local.sh: a cluster is already running from ${dir}; stop it first" >&2
    exit 1
fi

# On any failure from here on, take down what was started.
on_exit() {
    local status=$?
    [ "${status}" -eq 0 ] || stop_cluster
}
trap on_exit EXIT
mkdir -p "${dir}/munge" "${dir}/state" "${dir}/spool"
chmod 700 "${dir}/munge"
# munged wants a private key file and refuses sockets in group/world-writable folders.
[ -s "${dir}/munge/munge.key" ] || mungekey --create --keyfile="${dir}/munge/munge.key"
chmod 600 "${dir}/munge/munge.key"
socket=${dir}/munge/munge.socket
munged --force --key-file="${dir}/munge/munge.key" --socket="${socket}" \
    --pid-file="${dir}/munge/munged.pid" --log-file="${dir}/munge/munged.log" \
    --seed-file="${dir}/munge/munged.seed"

cpus=$(nproc)
# RealMemory a little under the total, or slurmd would report less and drain the node.
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
user=$(id -un)

# Memory enforcement: cgroup v1 memory controller if we may create groups in it.
cgroup_mem=/sys/fs/cgroup/memory
probe=${cgroup_mem}/slurm_local_probe.$$
if [ "${mem_limit}" = auto ]; then
    mem_limit=sampling
    if [ -f "${cgroup_mem}/memory.limit_in_bytes" ] && mkdir "${probe}" 2>/dev/null; then
        rmdir "${probe}"
        mem_limit=cgroup
    fi
fi
task_plugin=task/none
proctrack=proctrack/linuxproc
acct_params=OverMemoryKill
rm -f "${dir}/cgroup.conf"
if [ "${mem_limit}" = cgroup ]; then
    task_plugin=task/cgroup
    proctrack=proctrack/cgroup
    acct_params=NoOverMemoryKill
    cat > "${dir}/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedRAMSpace=100
AllowedSwapSpace=0
EOF
fi

cat > "${conf}.tmp" <<EOF
# Written by tools/slurm_local.sh: a single-node cluster for tests.
ClusterName=codectk
SlurmctldHost=localhost
SlurmctldPort=${port}
SlurmdPort=$((port + 1))
SlurmUser=${user}
SlurmdUser=${user}
AuthType=auth/munge
AuthInfo=socket=${socket}
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
ProctrackType=${proctrack}
TaskPlugin=${task_plugin}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Start queued batch jobs as soon as resources free up (the default waits up to 3 s).
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=${acct_params}
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/jobcomp.txt
MinJobAge=300
KillWait=5
InactiveLimit=0
DefMemPerCPU=$((mem_mb / cpus / 4))
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
mv "${conf}.tmp" "${conf}"

log "starting slurmctld and slurmd (${conf}; ${cpus} CPUs, ${mem_mb} MB, --mem enforced by ${mem_limit})"
slurmctld -c -f "${conf}"
slurmd -N localhost -f "${conf}"

state=""
for _ in $(seq 150); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    [ "${state}" = idle ] && break
    sleep 0.2
done
if [ "${state}" != idle ]; then
    log "Error: node localhost is '${state}', not idle, after 30 s; see ${dir}/slurmctld.log and ${dir}/slurmd.log"
    tail -n 5 "${dir}/slurmctld.log" "${dir}/slurmd.log" >&2 || true
    exit 1
fi
log "cluster up: export SLURM_CONF=${conf}"
