#!/usr/bin/env bash
# A one-node SLURM for the tests: munged, slurmctld and slurmd as plain processes (no systemd), all
# state, sockets, logs and fake GPU device files under one folder; nothing outside it changes.
#
#   tests/slurm/cluster.sh start DIR   # install (root, Debian) if needed, configure, start, wait for idle
#   tests/slurm/cluster.sh stop DIR    # cancel every job, stop the daemons
#   export SLURM_CONF=DIR/slurm.conf   # what sbatch, squeue and scancel need to find it
#   export PATH=DIR/bin:$PATH          # or: the client commands with SLURM_CONF built in
#
# DIR/bin holds the client commands (srun, sbatch, squeue, ...) as wrappers that set SLURM_CONF: the
# executor plugin removes every SLURM_* variable, SLURM_CONF included, before its srun inside a job, and
# a real cluster's slurm.conf sits at the default path, which the test must leave alone.
#
# Facts this relies on (Debian 12, slurm-wlm 22.05): proctrack/linuxproc and task/none need no cgroups;
# select/cons_tres with CR_Core_Memory and DefMemPerCPU, or each job takes the whole node; fake GPUs are
# character devices (mknod c 1 3: without a device file the node drains); without slurmdbd, sacct has
# nothing, so the executor plugin must poll squeue, which only sees finished jobs for MinJobAge seconds.
set -euo pipefail

action=${1:?usage: cluster.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: cluster.sh start|stop DIR}" && cd "$2" && pwd)
export SLURM_CONF=$dir/slurm.conf
GPUS=${MUSICOT_TEST_GPUS:-2}
PORT=${MUSICOT_TEST_SLURM_PORT:-16817}  # not 6817: a real slurmctld on the machine keeps its port

install() {
  local missing=""
  for p in slurmctld slurmd slurm-client munge; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "the SLURM test needs Debian packages:$missing (sudo apt-get install$missing)" >&2; exit 1
  fi
  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

configure() {
  mkdir -p "$dir"/{state,spool,log,munge,dev}
  [ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 700 "$dir/munge" && chmod 400 "$dir/munge/munge.key"
  local gres_files=()
  for ((i = 0; i < GPUS; i++)); do
    [ -e "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3
    gres_files+=("$dir/dev/gpu$i")
  done
  # the node as slurmd sees it (CPUs, sockets, memory), less some memory for the controller and the tests
  local node
  node=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+/NodeName=localhost/; s/ UpTime=.*//')
  local mem
  mem=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$node")
  node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 3 / 4))/" <<<"$node")
  cat >"$dir/slurm.conf" <<CONF
ClusterName=musicot-test
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs stay visible to squeue this long: at least 3 x slurm-init-seconds-before-status-checks
MinJobAge=600
KillWait=5
InactiveLimit=0
$node Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  local IFS=,
  echo "NodeName=localhost Name=gpu File=${gres_files[*]}" >"$dir/gres.conf"
  mkdir -p "$dir/bin"
  local tool real path_without
  path_without=$(tr : '\n' <<<"$PATH" | grep -vxF "$dir/bin" | paste -sd:)  # never wrap a wrapper
  for tool in srun sbatch squeue scancel sinfo scontrol sacct; do
    real=$(PATH=$path_without command -v $tool)
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$real" >"$dir/bin/$tool"
    chmod +x "$dir/bin/$tool"
  done
}

start() {
  install
  stop 2>/dev/null || true
  configure
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"
  slurmctld -f "$SLURM_CONF"
  slurmd -N localhost -f "$SLURM_CONF"
  for _ in $(seq 60); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    case "$state" in
      idle) echo "SLURM up: $SLURM_CONF"; return 0 ;;
      drain* | down*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;  # a drain survives restarts
    esac
    sleep 0.5
  done
  echo "SLURM did not come up (node state: ${state:-none}); logs in $dir/log" >&2
  tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
}

stop() {
  [ -f "$SLURM_CONF" ] && scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
  for pid_file in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pid_file" ]; then
      pid=$(cat "$pid_file")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pid_file"
    fi
  done
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
