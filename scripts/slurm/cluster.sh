#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for jobbudget's Slurm integration tests
# (issue 21): munge, slurmdbd on the local MariaDB, slurmctld and slurmd, all as root
# without systemd.  Idempotent: what runs is left running; `stop` ends it all.
#
#   scripts/slurm/cluster.sh [start|stop|status]
#
# Needs Debian's slurmctld slurmd slurm-client slurmdbd munge (apt-get install
# --no-install-recommends ...; .ci/run installs them) and MariaDB on 127.0.0.1:3306
# (root, no password).  Configuration goes to /etc/slurm (SLURM_CONF_DIR to change).
set -euo pipefail

CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
STATE=${SLURM_STATE_DIR:-/var/spool/jobbudget-slurm}
LOGS=${SLURM_LOG_DIR:-/var/log/jobbudget-slurm}
NODE=$(hostname -s)
CPUS=$(nproc)
MEMORY=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
#: GPUs the node declares: no hardware, device files of our own (gres.conf), so jobs can
#: ask for them and accounting records them (AllocTRES gres/gpu:a100=N) as on a GPU node.
GPU_TYPE=${SLURM_GPU_TYPE:-a100}
GPUS=${SLURM_GPUS:-2}

up() { pgrep -x "$1" >/dev/null 2>&1; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "slurm cluster: $what did not come up within ${seconds}s" >&2
  tail -n 20 "$LOGS"/*.log >&2 || true
  return 1
}

configure() {
  mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$STATE/dev" "$LOGS"
  local before
  before=$(cat "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" 2>/dev/null | md5sum || true)  # none yet on a fresh machine
  cat >"$CONF_DIR/slurm.conf" <<CONF
# written by jobbudget scripts/slurm/cluster.sh
ClusterName=jobbudget
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=100
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_TYPE
GresTypes=gpu
JobSubmitPlugins=lua
JobCompType=jobcomp/script
JobCompLoc=$CONF_DIR/jobbudget-jobcomp.sh
MinJobAge=30
ReturnToService=2
SchedulerParameters=defer_batch=0
SchedulerType=sched/backfill
NodeName=$NODE CPUs=$CPUS RealMemory=$MEMORY Gres=gpu:$GPU_TYPE:$GPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
CONF
  cat >"$CONF_DIR/slurmdbd.conf" <<CONF
# written by jobbudget scripts/slurm/cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=root
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$CONF_DIR/slurmdbd.conf"
  rm -f "$CONF_DIR/cgroup.conf"  # Slurm 22.05 has no "disabled"; proctrack/linuxproc needs none
  for i in $(seq 0 $((GPUS - 1))); do touch "$STATE/dev/gpu$i"; done
  cat >"$CONF_DIR/gres.conf" <<CONF
# written by jobbudget scripts/slurm/cluster.sh: GPUs without hardware
AutoDetect=off
NodeName=$NODE Name=gpu Type=$GPU_TYPE File=$STATE/dev/gpu[0-$((GPUS - 1))]
CONF
  if [ "$before" != "$(cat "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" | md5sum)" ]; then
    stop  # daemons started with another configuration: start them again with this one
  fi
  if [ ! -f "$CONF_DIR/jobbudget-jobcomp.sh" ]; then  # until jobbudget's is installed: meter nothing
    printf '#!/bin/sh\nexit 0\n' >"$CONF_DIR/jobbudget-jobcomp.sh"
    chmod 755 "$CONF_DIR/jobbudget-jobcomp.sh"
  fi
  if [ ! -f "$CONF_DIR/job_submit.lua" ]; then  # until jobbudget's is installed: let every job through
    cat >"$CONF_DIR/job_submit.lua" <<'LUA'
function slurm_job_submit(job_desc, part_list, submit_uid) return slurm.SUCCESS end
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid) return slurm.SUCCESS end
return slurm.SUCCESS
LUA
  fi
}

start() {
  configure
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  up munged || runuser -u munge -- /usr/sbin/munged
  wait_for 10 munge munge -n
  mysql -uroot -h127.0.0.1 -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db" 
  up slurmdbd || slurmdbd
  wait_for 30 slurmdbd sacctmgr -i show cluster
  sacctmgr -i add cluster jobbudget >/dev/null 2>&1 || true
  up slurmctld || slurmctld
  wait_for 30 slurmctld scontrol ping
  up slurmd || slurmd || { tail -n 20 "$LOGS/slurmd.log" >&2; exit 1; }
  wait_for 60 "the node" bash -c "sinfo -h -N -o '%T' | grep -Eq '^(idle|mixed|allocated)'"
  echo "slurm cluster up: node $NODE ($CPUS CPUs, ${MEMORY} MB), partitions debug and gpu"
}

stop() {
  for daemon in slurmd slurmctld slurmdbd; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do up slurmd || up slurmctld || up slurmdbd || break; sleep 0.1; done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
