#!/usr/bin/env bash
# Stop the one-node cluster started by start_local_cluster.sh: the daemons named in its PID
# files, nothing else. Jobs still running are cancelled first. The state folder is kept
# (logs stay readable); pass --purge to delete it too.
set -euo pipefail

state_dir="${BRAINMIS_SLURM_DIR:-/tmp/brainmis-slurm}"
export PATH="$PATH:/usr/sbin"
export SLURM_CONF="$state_dir/slurm.conf"

stop_pidfile() {  # stop_pidfile NAME: TERM the process in run/NAME.pid and wait for it to end
    local pidfile="$state_dir/run/$1.pid" pid
    [[ -s "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_local_cluster: $1 (pid $pid) did not stop; sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

if [[ -f "$SLURM_CONF" ]] && [[ -s "$state_dir/run/slurmctld.pid" ]] \
        && kill -0 "$(cat "$state_dir/run/slurmctld.pid")" 2>/dev/null; then
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi
stop_pidfile slurmd
stop_pidfile slurmctld
stop_pidfile munged

if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$state_dir"
fi
