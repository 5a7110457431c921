#!/usr/bin/env bash
# Stop the lab Slurm started by lab-up.sh: cancel its jobs, stop its daemons by the pids it
# recorded (nothing else is touched: no pkill), and with --purge remove $SLURM_LAB.
#   SLURM_LAB  lab folder (default /tmp/dpo-sweep-slurm-lab)
set -uo pipefail

LAB=${SLURM_LAB:-/tmp/dpo-sweep-slurm-lab}
purge=0
[[ ${1:-} == --purge ]] && purge=1
log() { printf 'slurm-lab: %s\n' "$*" >&2; }
[[ -d $LAB ]] || { log "no lab at $LAB"; exit 0; }
export SLURM_CONF=$LAB/etc/slurm.conf

running() { # pid file $1 names a live process whose binary is $2 (readlink -f on both sides)
  local pidfile=$1 bin pid exe
  bin=$(readlink -f "$(command -v "$2" 2>/dev/null)" 2>/dev/null) || return 1
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc 0-9 <"$pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$bin" ]]
}
stop_pid() {
  local pidfile=$1 bin=$2 pid i
  if running "$pidfile" "$bin"; then
    pid=$(tr -dc 0-9 <"$pidfile")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do running "$pidfile" "$bin" || break; sleep 0.1; done
    if running "$pidfile" "$bin"; then kill -KILL "$pid" 2>/dev/null; log "$bin (pid $pid) killed"; else log "$bin (pid $pid) stopped"; fi
  fi
  rm -f "$pidfile"
}

# 1. cancel every job of this cluster and wait (up to 15 s) for the queue to empty
if running "$LAB/pids/slurmctld.pid" slurmctld; then
  jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')
  if [[ -n ${jobs// /} ]]; then
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    for ((i = 0; i < 150; i++)); do [[ -z $(squeue -h -o '%A' 2>/dev/null) ]] && break; sleep 0.1; done
  fi
fi

# 2. daemons, by recorded pid only: slurmd(s), slurmctld, then munged if lab-up started it
for f in "$LAB"/pids/slurmd-*.pid; do [[ -e $f ]] && stop_pid "$f" slurmd; done
stop_pid "$LAB/pids/slurmctld.pid" slurmctld
[[ -e $LAB/pids/munged.pid ]] && stop_pid "$LAB/pids/munged.pid" munged

# 3. --purge
if ((purge)); then
  rm -rf "${LAB:?}"
  log "removed $LAB"
fi
exit 0
