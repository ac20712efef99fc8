#!/usr/bin/env bash
# Stop the single-node SLURM started by start_single_node.sh. Idempotent: does
# nothing (and exits 0) when the daemons are not running.
#
# Usage: bash scripts/slurm/stop_single_node.sh [--keep-munge]
#   --keep-munge   leave munged running (used by start_single_node.sh when it
#                  restarts the Slurm daemons after a configuration change)
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

KEEP_MUNGE=0
for a in "$@"; do
    case "$a" in
        --keep-munge) KEEP_MUNGE=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "[slurm-stop] ERROR: unknown argument '$a'" >&2; exit 2 ;;
    esac
done

RUN_DIR=/run/slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

log() { echo "[slurm-stop] $*"; }
[ "$(id -u)" -eq 0 ] || { echo "[slurm-stop] ERROR: must be run as root" >&2; exit 1; }

# Pid from a pid file, only if that pid is still the daemon the file is named
# after (a stale file's pid may have been reused by an unrelated process).
pid_of() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(basename "$1" .pid)" ] || return 1
    echo "$pid"
}
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Wait up to $2 seconds for pid $1 to exit; SIGKILL it after that.
wait_or_kill() {
    local pid=$1 secs=$2 name=$3 _
    for _ in $(seq 1 $(( secs * 5 ))); do
        alive "$pid" || return 0
        sleep 0.2
    done
    log "$name (pid $pid) still running after ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

ctld=$(pid_of "$CTLD_PID" || true)
slurmd=$(pid_of "$SLURMD_PID" || true)

if alive "$ctld" || alive "$slurmd"; then
    # "scontrol shutdown" asks slurmctld to stop every slurmd and then itself.
    if alive "$ctld" && command -v scontrol >/dev/null 2>&1; then
        log "scontrol shutdown"
        timeout 20 scontrol shutdown >/dev/null 2>&1 || true
    fi
    for pair in "slurmd:$slurmd" "slurmctld:$ctld"; do
        name=${pair%%:*}; pid=${pair#*:}
        if alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_or_kill "$pid" 20 "$name"
        fi
    done
    log "slurm daemons stopped"
else
    log "slurm daemons not running"
fi
rm -f "$CTLD_PID" "$SLURMD_PID"

if [ "$KEEP_MUNGE" -eq 0 ]; then
    munged=$(pid_of "$MUNGE_PID" || true)
    if alive "$munged"; then
        kill -TERM "$munged" 2>/dev/null || true
        wait_or_kill "$munged" 10 munged
        log "munged stopped"
    else
        log "munged not running"
    fi
fi
exit 0
