#!/usr/bin/env bash
# Start a real single-node SLURM cluster (slurmctld + slurmd + munged) on this
# machine, for CI.  Idempotent: safe to run again while the daemons are up.
#
# Usage: sudo bash scripts/slurm/start_single_node.sh
#
# Environment knobs (all optional):
#   SLURM_START_TIMEOUT  seconds to wait for the node to become idle (default 120)
#   SLURM_PARTITION      partition name (default "debug")
#   SLURM_CONF_DIR       where slurm.conf goes (default /etc/slurm, the path the
#                        Debian binaries read without SLURM_CONF being set)
#
# See scripts/slurm/README.md for the configuration choices.
set -euo pipefail

T0=$(date +%s)
START_TIMEOUT=${SLURM_START_TIMEOUT:-120}
PARTITION=${SLURM_PARTITION:-debug}
CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_LOG=$LOG_DIR/slurmd.log
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
MUNGE_LOG=/var/log/munge/munged.log
MARKER="# Managed by fractaltrain scripts/slurm/start_single_node.sh"

log() { echo "[slurm-start] $*"; }
die() { echo "[slurm-start] ERROR: $*" >&2; exit 1; }

dump_logs() {
    local f n
    for f in "$MUNGE_LOG" "$CTLD_LOG" "$SLURMD_LOG"; do
        n=30; [ "$f" = "$MUNGE_LOG" ] && n=10
        if [ -f "$f" ]; then
            echo "----- last $n lines of $f -----" >&2
            tail -n "$n" "$f" >&2 || true
        else
            echo "----- $f does not exist -----" >&2
        fi
    done
}

# ---------------------------------------------------------------- preconditions
[ "$(id -u)" -eq 0 ] || die "must be run as root (uid 0); current uid is $(id -u)"
command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ] \
    || die "this script supports Debian/Ubuntu (apt-get) only"

# ---------------------------------------------------------------- packages
export DEBIAN_FRONTEND=noninteractive
PKGS=(slurm-wlm munge)
# The binaries we actually need; slurm-wlm is a metapackage pulling them in.
need_install() {
    local p
    for p in slurmctld slurmd slurm-client munge; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || return 0
    done
    for b in slurmctld slurmd sinfo sbatch scontrol munged munge unmunge; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 0
    done
    return 1
}

apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${PKGS[@]}" </dev/null
}

if need_install; then
    T_APT=$(date +%s)
    log "installing ${PKGS[*]} ..."
    # Only run apt-get update when needed: no package lists at all, no install
    # candidate for slurm-wlm, or an install that failed (e.g. stale lists
    # pointing at files that are gone from the mirror).
    updated=0
    # (Capture apt-cache's output first: "cmd | grep -q" under pipefail can
    # fail spuriously when grep exits early and cmd gets SIGPIPE.)
    policy=$(apt-cache policy slurm-wlm munge 2>/dev/null || true)
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 \
        || [ "$(grep -c 'Candidate: [0-9]' <<<"$policy")" -lt 2 ]; then
        log "apt-get update (no usable package lists)"
        apt-get update -q </dev/null >/tmp/slurm-apt-update.log 2>&1 \
            || { tail -n 20 /tmp/slurm-apt-update.log >&2; die "apt-get update failed (see /tmp/slurm-apt-update.log)"; }
        updated=1
    fi
    if ! apt_install >/tmp/slurm-apt-install.log 2>&1; then
        if [ "$updated" -eq 0 ]; then
            log "install failed with current lists; running apt-get update and retrying"
            apt-get update -q </dev/null >/tmp/slurm-apt-update.log 2>&1 \
                || { tail -n 20 /tmp/slurm-apt-update.log >&2; die "apt-get update failed (see /tmp/slurm-apt-update.log)"; }
            apt_install >/tmp/slurm-apt-install.log 2>&1 \
                || { tail -n 30 /tmp/slurm-apt-install.log >&2; die "apt-get install ${PKGS[*]} failed (see /tmp/slurm-apt-install.log)"; }
        else
            tail -n 30 /tmp/slurm-apt-install.log >&2
            die "apt-get install ${PKGS[*]} failed (see /tmp/slurm-apt-install.log)"
        fi
    fi
    need_install && die "packages still missing after apt-get install (see /tmp/slurm-apt-install.log)"
    log "packages installed in $(( $(date +%s) - T_APT ))s"
else
    log "packages already installed"
fi
export PATH="$PATH:/usr/sbin:/sbin"

SLURM_VERSION=$(slurmd -V 2>/dev/null | awk '{print $2}')
[ -n "$SLURM_VERSION" ] || die "cannot determine Slurm version from 'slurmd -V'"
log "Slurm version: $SLURM_VERSION"

# ---------------------------------------------------------------- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if ! [ -s "$MUNGE_KEY" ]; then
    log "creating munge key $MUNGE_KEY"
    if command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
        mungekey --create --keyfile="$MUNGE_KEY" --force
    else
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
fi
if id munge >/dev/null 2>&1; then MUNGE_USER=munge; else MUNGE_USER=root; fi
chown "$MUNGE_USER:$MUNGE_USER" /etc/munge "$MUNGE_KEY" /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 "$MUNGE_KEY"

if munge_ok; then
    log "munged already running"
else
    # Stale pid/socket from a killed munged make it refuse to start.
    munged_pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    if [ -n "$munged_pid" ] && [ "$(cat "/proc/$munged_pid/comm" 2>/dev/null)" != munged ]; then
        rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    fi
    log "starting munged as $MUNGE_USER"
    if [ "$MUNGE_USER" = root ]; then
        munged --force || die "munged failed to start (see $MUNGE_LOG)"
    else
        runuser -u munge -- munged || die "munged failed to start (see $MUNGE_LOG)"
    fi
    for _ in $(seq 1 50); do munge_ok && break; sleep 0.2; done
    munge_ok || { dump_logs; die "munged started but 'munge -n | unmunge' fails"; }
fi

# ---------------------------------------------------------------- slurm.conf
NODE=$(hostname -s)
[ -n "$NODE" ] || die "hostname -s is empty"
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
# Leave headroom (10%, at least 256 MB) so slurmd never reports less memory
# than configured (that would drain the node with "Low RealMemory").
REAL_MEM=$(( MEM_MB - (MEM_MB / 10 > 256 ? MEM_MB / 10 : 256) ))
[ "$REAL_MEM" -gt 0 ] || REAL_MEM=1

mkdir -p "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"
chmod 0755 "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"

NEW_CONF=$(cat <<EOF
$MARKER
# Single-node cluster for CI; regenerated on every start. See scripts/slurm/README.md.
ClusterName=fractaltrain
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Use the CPU/memory numbers below even if slurmd detects a different topology
# (containers and VMs often report odd socket/core/thread layouts).
SlurmdParameters=config_overrides
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
MinJobAge=300
MaxArraySize=10001
NodeName=${NODE} NodeAddr=127.0.0.1 NodeHostname=${NODE} CPUs=${CPUS} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)

# cgroup.conf: nothing in slurm.conf needs cgroups (proctrack/linuxproc,
# task/none, jobacct_gather/none). Slurm >= 24.05 can switch the cgroup
# plugin off explicitly; older versions reject "disabled", and only load the
# cgroup plugin when a cgroup-based plugin is configured, so for them we just
# keep the file harmless (no constraints, no automount).
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
if ver_ge "$SLURM_VERSION" "24.05"; then
    CGROUP_PLUGIN_LINE="CgroupPlugin=disabled"
else
    CGROUP_PLUGIN_LINE="# CgroupPlugin=disabled is only understood by Slurm >= 24.05 (this is $SLURM_VERSION)"
fi
NEW_CGROUP=$(cat <<EOF
$MARKER
$CGROUP_PLUGIN_LINE
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
)

CONF_CHANGED=0
write_if_changed() { # path content
    local path=$1 content=$2
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        return 0
    fi
    if [ -f "$path" ] && ! grep -qF "$MARKER" "$path"; then
        local bak
        bak="$path.bak.$(date +%Y%m%d%H%M%S)"
        log "backing up existing $path to $bak"
        cp -p "$path" "$bak"
    fi
    printf '%s\n' "$content" > "$path"
    chmod 0644 "$path"
    CONF_CHANGED=1
    log "wrote $path"
}
write_if_changed "$CONF_DIR/slurm.conf" "$NEW_CONF"
write_if_changed "$CONF_DIR/cgroup.conf" "$NEW_CGROUP"
if [ "$CONF_DIR" != /etc/slurm ]; then
    export SLURM_CONF="$CONF_DIR/slurm.conf"
    log "NOTE: clients need SLURM_CONF=$SLURM_CONF"
fi

# ---------------------------------------------------------------- daemons
# True if the pid file names a live process of the daemon it is named after
# (guards against a stale pid file whose pid now belongs to something else).
pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(basename "$1" .pid)" ]
}

if [ "$CONF_CHANGED" -eq 1 ] && { pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID"; }; then
    log "configuration changed while daemons run: restarting them"
    bash "$(dirname "$0")/stop_single_node.sh" --keep-munge
fi

if pid_alive "$CTLD_PID"; then
    log "slurmctld already running (pid $(cat "$CTLD_PID"))"
else
    rm -f "$CTLD_PID"
    log "starting slurmctld"
    slurmctld || { dump_logs; die "slurmctld failed to start"; }
fi
ctld_up() { local out; out=$(scontrol ping 2>/dev/null || true); [[ "$out" == *"is UP"* ]]; }
# Wait for the controller to answer before starting slurmd (it registers).
for _ in $(seq 1 $(( START_TIMEOUT * 2 ))); do
    ctld_up && break
    sleep 0.5
done
ctld_up \
    || { dump_logs; die "slurmctld did not answer 'scontrol ping' within ${START_TIMEOUT}s"; }

# The controller keeps showing a node "idle" for up to SlurmdTimeout after its
# slurmd died, so readiness = live slurmd pid + (if we started slurmd) a new
# SlurmdStartTime, i.e. this slurmd registered + an idle/usable node state.
slurmd_start_time() {
    local out; out=$(scontrol -o show node "$NODE" 2>/dev/null || true)
    sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p' <<<"$out"
}
OLD_SLURMD_START=""
if pid_alive "$SLURMD_PID"; then
    log "slurmd already running (pid $(cat "$SLURMD_PID"))"
else
    rm -f "$SLURMD_PID"
    OLD_SLURMD_START=$(slurmd_start_time)
    [ -n "$OLD_SLURMD_START" ] || OLD_SLURMD_START=none
    log "starting slurmd (node $NODE)"
    slurmd -N "$NODE" || { dump_logs; die "slurmd failed to start"; }
fi

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
deadline=$(( $(date +%s) + START_TIMEOUT ))
resumed=0
state=""
while :; do
    state=$(node_state)
    registered=1
    if [ -n "$OLD_SLURMD_START" ] && [ "$(slurmd_start_time)" = "$OLD_SLURMD_START" ]; then
        registered=0
    fi
    case "$state" in
        idle|mixed|allocated|completing)
            [ "$registered" -eq 1 ] && pid_alive "$SLURMD_PID" && break ;;
        drained|draining|down|drained\*|down\*|fail|failing)
            # A node left down/drained by an earlier run: put it back once.
            if [ "$resumed" -eq 0 ] && pid_alive "$SLURMD_PID"; then
                log "node is '$state' ($(sinfo -h -N -n "$NODE" -o '%E')); resuming it"
                scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
                resumed=1
            fi ;;
    esac
    # slurmd forks into the background and writes its pid file shortly after;
    # allow a few seconds before concluding that it died during startup.
    if ! pid_alive "$SLURMD_PID" && [ "$(date +%s)" -ge "$(( deadline - START_TIMEOUT + 5 ))" ]; then
        dump_logs; die "slurmd is not running (it exited during startup); node state '${state:-unknown}'"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        dump_logs
        die "node $NODE not idle after ${START_TIMEOUT}s (state '${state:-unknown}', reason '$(sinfo -h -N -n "$NODE" -o '%E' 2>/dev/null)')"
    fi
    sleep 0.5
done

sinfo
log "Slurm $SLURM_VERSION single-node cluster up: node $NODE is $state (CPUs=$CPUS RealMemory=${REAL_MEM}MB) in $(( $(date +%s) - T0 ))s"
