#!/usr/bin/env bash
# A single-machine Slurm "lab" on 127.0.0.1 for dpo-sweep's Slurm tests (see docs/cluster.md).
# Idempotent; must run as root. Everything lives under $SLURM_LAB; nothing is written to /etc/slurm.
#   SLURM_LAB        lab folder (default /tmp/dpo-sweep-slurm-lab)
#   SLURM_LAB_CPUS   CPUs advertised per node (default: nproc; may exceed the real cores)
#   SLURM_LAB_MEM_MB memory advertised per node (default: 90% of RAM / nodes)
#   SLURM_LAB_NODES  1 → one node "localhost"; N > 1 → n1..nN, one slurmd each on ports 17001.. (default 1)
# Afterwards: `source "$SLURM_LAB/env.sh"` (exports SLURM_CONF). Stop with lab-down.sh [--purge].
set -euo pipefail

LAB=${SLURM_LAB:-/tmp/dpo-sweep-slurm-lab}
CPUS=${SLURM_LAB_CPUS:-$(nproc)}
NODES=${SLURM_LAB_NODES:-1}
log() { printf 'slurm-lab: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it starts munged, slurmctld and slurmd)"
[[ $NODES =~ ^[1-9][0-9]*$ ]] || die "SLURM_LAB_NODES must be a positive integer, got '$NODES'"
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "SLURM_LAB_CPUS must be a positive integer, got '$CPUS'"

# --- 1. packages (only when missing) -----------------------------------------------------------
need=()
command -v munged >/dev/null 2>&1 || need+=(munge)
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then # keep postinst from starting daemons
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update -qq
  install() { apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  install || { apt-get update -qq && install; }
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$LAB"/{etc,pids,log,state,spool}
chmod 755 "$LAB"

# Is the daemon recorded in pid file $1 alive and really binary $2? (a zombie's exe is unreadable;
# /usr/sbin/slurmd is an alternatives link to slurmd-wlm: compare both sides with readlink -f.)
running() {
  local pidfile=$1 bin pid exe
  bin=$(readlink -f "$(command -v "$2")")
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc 0-9 <"$pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$bin" ]]
}
stop_pid() { # TERM, then KILL after 10 s; pid-file based only
  local pidfile=$1 bin=$2 pid i
  running "$pidfile" "$bin" || { rm -f "$pidfile"; return 0; }
  pid=$(tr -dc 0-9 <"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do running "$pidfile" "$bin" || break; sleep 0.1; done
  running "$pidfile" "$bin" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# --- 2. munge ---------------------------------------------------------------------------------
if ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
  [[ -s /etc/munge/munge.key ]] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge && chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  runuser -u munge -- munged --origin=127.0.0.1 --force
  for ((i = 0; i < 50; i++)); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
  cp /run/munge/munged.pid "$LAB/pids/munged.pid" # only a munged we started is ours to stop
  munge -n | unmunge >/dev/null || die "munge round trip failed"
  log "munged started (pid $(cat "$LAB/pids/munged.pid"))"
fi

# --- 3. slurm.conf ----------------------------------------------------------------------------
total_mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
MEM=${SLURM_LAB_MEM_MB:-$((total_mb * 9 / 10 / NODES))}
if ((NODES == 1)); then
  node_names=(localhost)
  node_line="NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN"
else
  node_names=()
  for ((i = 1; i <= NODES; i++)); do node_names+=("n$i"); done
  node_line="NodeName=n[1-$NODES] NodeAddr=127.0.0.1 NodeHostname=localhost Port=[17001-$((17000 + NODES))] CPUs=$CPUS RealMemory=$MEM State=UNKNOWN"
fi
CONF=$LAB/etc/slurm.conf
new_conf=$(
  cat <<CONF
# Written by dpo-sweep scripts/slurm/lab-up.sh; a lab cluster on loopback, not for production.
ClusterName=dpolab
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LAB/log/jobcomp.txt
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool/%n
SlurmctldPidFile=$LAB/pids/slurmctld.pid
SlurmdPidFile=$LAB/pids/slurmd-%n.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd-%n.log
SlurmctldPort=6817
SlurmdPort=6818
$node_line
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
)
changed=0
if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]]; then
  printf '%s\n' "$new_conf" >"$CONF"
  changed=1
fi
printf 'export SLURM_CONF=%q\nexport SLURM_LAB=%q\n' "$CONF" "$LAB" >"$LAB/env.sh"
export SLURM_CONF=$CONF

# --- 4. daemons -------------------------------------------------------------------------------
if ((changed)); then # node CPUs/memory/count changes need a restart (scontrol reconfigure refuses)
  for f in "$LAB"/pids/slurmd-*.pid; do [[ -e $f ]] && stop_pid "$f" slurmd; done
  stop_pid "$LAB/pids/slurmctld.pid" slurmctld
  rm -rf "${LAB:?}"/state/* "${LAB:?}"/spool/*
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! running "$LAB/pids/slurmctld.pid" slurmctld; then
  # Ports are fixed (6817/6818, 17001..): a second lab in another folder cannot run beside this one.
  port_busy 6817 && die "port 6817 is in use: another Slurm (a lab in another folder?) is running; stop it first (SLURM_LAB=<its folder> lab-down.sh)"
  slurmctld -c -f "$CONF"
  for ((i = 0; i < 50; i++)); do running "$LAB/pids/slurmctld.pid" slurmctld && break; sleep 0.1; done
  running "$LAB/pids/slurmctld.pid" slurmctld || die "slurmctld did not start (see $LAB/log/slurmctld.log)"
  log "slurmctld started (pid $(cat "$LAB/pids/slurmctld.pid"))"
fi
for n in "${node_names[@]}"; do
  mkdir -p "$LAB/spool/$n"
  pidfile=$LAB/pids/slurmd-$n.pid
  running "$pidfile" slurmd && continue
  slurmd -f "$CONF" -N "$n"
  for ((i = 0; i < 50; i++)); do running "$pidfile" slurmd && break; sleep 0.1; done
  running "$pidfile" slurmd || die "slurmd $n did not start (see $LAB/log/slurmd-$n.log)"
  log "slurmd $n started (pid $(cat "$pidfile"))"
done

# --- 5. wait until every node is idle ---------------------------------------------------------
for ((i = 0; i < 300; i++)); do
  states=$(sinfo -h -N -o '%T' 2>/dev/null | sort -u | tr '\n' ' ')
  if [[ -n $states && $states =~ ^((idle|mixed|allocated)\ )+$ ]]; then
    log "ready: ${#node_names[@]} node(s) × $CPUS CPUs (${node_names[*]}); source $LAB/env.sh"
    exit 0
  fi
  if ((i % 20 == 19)); then # a node left down by an earlier run: bring it back
    scontrol update NodeName="$(IFS=,; echo "${node_names[*]}")" State=RESUME >/dev/null 2>&1 || true
  fi
  sleep 0.1
done
die "nodes not idle after 30 s: $(sinfo -N 2>&1 | tr '\n' ';')"
