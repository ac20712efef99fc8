#!/usr/bin/env bash
# End-to-end self-test of fractaltrain on a real (single-node) Slurm cluster.
#
#   0. starts the cluster with start_single_node.sh if it is not up (installs
#      slurm-wlm + munge from Debian's mirror if needed), writes a small config;
#   1. the zoom single-process (the reference; also warms numba's cache), then
#      submit_zoom.sh: locate job -> 4-shard zoom array -> assembly (afterok);
#      the MP4 frames and every keyframe's `measure` must be bit-identical;
#   2. requeue: submits again into a fresh folder, scancels one array task once
#      it has written some (not all) of its tiles, checks that the assembly job
#      is cancelled and that `fractaltrain assemble` fails naming exactly that
#      shard, resubmits only that index (sbatch --array=K zoom_array.sbatch),
#      checks that it skipped the tiles already done, assembles again and
#      checks bit-identity again;
#   3. render_array.sbatch with 2 shards + assemble.sbatch vs a single render
#      (PNG bytes and `measure`).
# Prints PASS/FAIL lines; exits 0 only if everything passed.  Stops the
# cluster at the end only if it started it.
#
# Usage (root, Debian):  bash scripts/slurm/selftest.sh
# Environment:
#   FRACTALTRAIN_PYTHON   python with fractaltrain installed (default: python3 on PATH,
#                         then python); the jobs run `python -m fractaltrain` with it
#   SELFTEST_TIMEOUT      seconds per wait (default 300)
#   SELFTEST_STEPS        training steps of the test config (default 3000: a tile then takes
#                         a second or more, so a task is cancelled mid-way in part 2 by the
#                         0.05 s watch; the whole self-test took 188 s on a 2-core Xeon, where
#                         10000 steps took over 180 s for the locate job alone)
#   SELFTEST_VICTIM       array index to cancel in part 2 (default 1)
#   SELFTEST_RENDER=0     skip part 3
#   SELFTEST_KEEP=1       keep the work folder (it is always kept on failure)
#   SELFTEST_KEEP_CLUSTER=1  leave a cluster that the self-test started running
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${SELFTEST_TIMEOUT:-300}
STEPS=${SELFTEST_STEPS:-3000}
VICTIM=${SELFTEST_VICTIM:-1}
NSHARDS=4
T0=$(date +%s)
WORK=""
STARTED_CLUSTER=0
MYJOBS=()

log() { echo "[selftest $(( $(date +%s) - T0 ))s] $*"; }
pass() { echo "PASS: $*"; }
dump() {
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        local f
        for f in "$WORK"/*/logs/*.out; do
            [ -f "$f" ] && { echo "----- $f -----"; tail -n 40 "$f"; }
        done
    fi
    echo "----- squeue -----"; squeue 2>&1 || true
    echo "----- sinfo -----"; sinfo -N -l 2>&1 || true
    [ -f /var/log/slurm/slurmctld.log ] && { echo "----- tail slurmctld.log -----"; tail -n 30 /var/log/slurm/slurmctld.log; }
    return 0
}
fail() {
    echo "FAIL: $*"
    dump >&2
    exit 1
}
cleanup() {
    local rc=$?
    set +e
    if [ "${#MYJOBS[@]}" -gt 0 ] && command -v scancel >/dev/null 2>&1; then
        scancel "${MYJOBS[@]}" 2>/dev/null   # no-op for finished jobs
    fi
    if [ "$STARTED_CLUSTER" = 1 ] && [ "${SELFTEST_KEEP_CLUSTER:-0}" != 1 ]; then
        log "stopping the cluster this self-test started"
        bash "$HERE/stop_single_node.sh" >/dev/null 2>&1 || echo "WARNING: stop_single_node.sh failed"
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$rc" -eq 0 ] && [ "${SELFTEST_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
    fi
    if [ "$rc" -eq 0 ]; then
        echo "PASS: slurm selftest ($(( $(date +%s) - T0 ))s)"
    else
        echo "FAIL: slurm selftest (exit $rc, $(( $(date +%s) - T0 ))s)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- preconditions
[ "$(id -u)" -eq 0 ] || fail "must run as root (uid $(id -u))"
{ command -v apt-get >/dev/null && [ -f /etc/debian_version ]; } || fail "needs Debian/Ubuntu (apt-get)"

PY=${FRACTALTRAIN_PYTHON:-$(command -v python3 || command -v python || true)}
[ -n "$PY" ] || fail "no python3 on PATH; set FRACTALTRAIN_PYTHON"
PY=$("$PY" -c 'import sys; print(sys.executable)') || fail "cannot run $PY"
"$PY" -c 'import fractaltrain' 2>/dev/null || fail "$PY cannot import fractaltrain (pip install -e .)"
log "python: $PY (fractaltrain from $("$PY" -c 'import fractaltrain, os; print(os.path.dirname(fractaltrain.__file__))'))"

# ---------------------------------------------------------------- cluster
cluster_up() {
    local p
    for p in /run/slurm/slurmctld.pid /run/slurm/slurmd.pid; do
        [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null || return 1
    done
    command -v scontrol >/dev/null || return 1
    local ping; ping=$(scontrol ping 2>/dev/null) || return 1
    grep -q UP <<<"$ping"
}
if cluster_up; then
    log "cluster already running (will be left running)"
else
    STARTED_CLUSTER=1
    log "starting the single-node cluster"
fi
T=$(date +%s)
bash "$HERE/start_single_node.sh" || fail "start_single_node.sh failed"
log "cluster ready in $(( $(date +%s) - T ))s"

# ---------------------------------------------------------------- work folder
WORK=$(mktemp -d /tmp/fractaltrain-slurm-selftest.XXXXXX)
chmod 0755 "$WORK"
cd "$WORK"
log "work folder $WORK"
# The jobs inherit PATH (sbatch --export=ALL): put a `fractaltrain` first on it
# that runs this python, so the jobs use the same installation as the caller.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec %q -m fractaltrain "$@"\n' "$PY" > "$WORK/bin/fractaltrain"
chmod +x "$WORK/bin/fractaltrain"
export PATH="$WORK/bin:$PATH"
unset FRACTALTRAIN CENTER CENTER_FILE ZOOM_ARGS RENDER_ARGS ARRAY LOCATE

CFG="$WORK/st.yaml"
cat > "$CFG" <<EOF
name: st
network: {width: 4}
data: {size: 12}
training: {steps: $STEPS}
resolution: 64x64
tile: 16
EOF
ZOOM=(--frames 12 --size 32x20 --depth 1.5)

# ---------------------------------------------------------------- helpers
# shellcheck source=jobwait.sh
source "$HERE/jobwait.sh"
submit_zoom() { # out-dir [VAR=value...] -> sets LOCATE_JOB ARRAY_JOB ASSEMBLE_JOB
    local out=$1 res; shift
    res=$(env "$@" NSHARDS=$NSHARDS CONFIG="$CFG" OUT="$out" FRAMES=12 SIZE=32x20 DEPTH=1.5 \
        CPUS=1 MEM=512M TIME_LIMIT=10 LOCATE_CPUS=1 LOCATE_MEM=512M LOCATE_TIME=10 \
        ASSEMBLE_CPUS=1 ASSEMBLE_MEM=512M ASSEMBLE_TIME=10 \
        bash "$HERE/submit_zoom.sh") || { echo "$res"; fail "submit_zoom.sh failed"; }
    echo "$res" | sed 's/^/    /'
    LOCATE_JOB=$(sed -n 's/^locate_job=//p' <<<"$res")
    ARRAY_JOB=$(sed -n 's/^array_job=//p' <<<"$res")
    ASSEMBLE_JOB=$(sed -n 's/^assemble_job=//p' <<<"$res")
    [ -n "$LOCATE_JOB" ] && [ -n "$ARRAY_JOB" ] && [ -n "$ASSEMBLE_JOB" ] || fail "submit_zoom.sh printed no job ids"
    MYJOBS+=("$LOCATE_JOB" "$ARRAY_JOB" "$ASSEMBLE_JOB")
}
# The tile files shard K/N owns in DIR's store, one per line (positions run
# over the manifest's grids in order, tiles row-major, as fractaltrain numbers
# them); nothing while the task has not written its manifest yet.
shard_paths() { # dir k n
    "$PY" - "$@" <<'EOF'
import glob, json, os, sys
out, k, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
jobs = sorted(glob.glob(os.path.join(out, "jobs", "*.json")))
paths, pos = [], 0
try:
    m = json.load(open(jobs[0]))
    for key in m["grids"]:
        g = json.load(open(os.path.join(out, "tiles", key, "grid.json")))
        t = g["tile"]
        for r in range(-(-g["height"] // t)):
            for c in range(-(-g["width"] // t)):
                if pos % n == k:
                    paths.append(os.path.join(out, "tiles", key, f"{r:04d}_{c:04d}.npz"))
                pos += 1
except (IndexError, OSError, ValueError):
    paths = []  # not started yet
for p in paths:
    print(p)
EOF
}
count_existing() { # path... -> how many exist
    local p n=0
    for p in "$@"; do [ -e "$p" ] && n=$((n + 1)); done
    echo "$n"
}
compare_zoom() { # dir-a dir-b: MP4 frames and every keyframe measure bit-identical
    "$PY" - "$1" "$2" "$HERE/../../tests" <<'EOF'
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from video_reader import read_video
a, b = Path(sys.argv[1]), Path(sys.argv[2])
fa, _ = read_video(a / "st.mp4")
fb, _ = read_video(b / "st.mp4")
assert len(fa) > 0 and fa.shape == fb.shape, f"frames {fa.shape} vs {fb.shape}"
assert np.array_equal(fa, fb), f"{int((fa != fb).any(axis=(1, 2, 3)).sum())} frame(s) differ"
ka = sorted(p.name for p in (a / "keyframes").glob("*.npz"))
kb = sorted(p.name for p in (b / "keyframes").glob("*.npz"))
assert ka and ka == kb, f"keyframes {ka} vs {kb}"
for name in ka:
    ma, mb = np.load(a / "keyframes" / name)["measure"], np.load(b / "keyframes" / name)["measure"]
    assert ma.dtype == mb.dtype and ma.shape == mb.shape and ma.tobytes() == mb.tobytes(), f"{name}: measure differs"
print(f"{fa.shape[0]} frames {fa.shape[2]}x{fa.shape[1]} and {len(ka)} keyframe measures "
      f"({mb.shape[1]}x{mb.shape[0]}) bit-identical")
EOF
}

# ---------------------------------------------------------------- 1. array vs single
# The single-process reference first: it also fills numba's on-disk cache, so
# the jobs do not all compile the kernels at once (fresh checkout / venv).
log "1/3: single-process reference zoom"
T=$(date +%s)
"$PY" -m fractaltrain zoom "$CFG" --out "$WORK/single" "${ZOOM[@]}" --quiet >"$WORK/single.log" 2>&1 \
    || { cat "$WORK/single.log"; fail "single-process zoom failed"; }
T_SINGLE=$(( $(date +%s) - T ))
log "single-process zoom (own locate, all cores) in ${T_SINGLE}s: $(head -n 1 "$WORK/single.log")"
log "1/3: submit_zoom.sh: locate -> $NSHARDS-shard zoom array -> assembly"
T=$(date +%s)
submit_zoom "$WORK/array"
wait_done "zoom array" "$LOCATE_JOB" "$ARRAY_JOB" "$ASSEMBLE_JOB"
expect_states "$LOCATE_JOB" COMPLETED "locate job"
expect_states "$ARRAY_JOB" "COMPLETED COMPLETED COMPLETED COMPLETED" "zoom array"
expect_states "$ASSEMBLE_JOB" COMPLETED "assembly job"
[ -f "$WORK/array/st.mp4" ] || fail "assembly job wrote no $WORK/array/st.mp4"
grep -qF "fractaltrain: $WORK/bin/fractaltrain" "$WORK"/array/logs/zoom_*_0.out \
    || fail "array task 0 did not use $WORK/bin/fractaltrain"
for k in $(seq 0 $((NSHARDS - 1))); do
    grep -q "shard $k/$NSHARDS: [0-9]* tiles computed" "$WORK"/array/logs/zoom_"${ARRAY_JOB}"_"$k".out \
        || fail "array task $k did not report its shard"
done
CENTER=$(cat "$WORK/array/center.txt")
T_ARRAY=$(( $(date +%s) - T ))
pass "locate job $LOCATE_JOB (target $CENTER) -> array $ARRAY_JOB (4 tasks) -> assembly $ASSEMBLE_JOB: all COMPLETED in ${T_ARRAY}s"

msg=$(compare_zoom "$WORK/array" "$WORK/single" 2>&1) || { echo "$msg"; fail "array result differs from single-process run"; }
pass "array vs single-process: $msg"

# ---------------------------------------------------------------- 2. scancel one task, resubmit it
log "2/3: requeue: cancel task $VICTIM mid-way, resubmit only that index"
T=$(date +%s)
OUT2="$WORK/requeue"
submit_zoom "$OUT2"
# Wait until the task runs and has written its manifest, then watch its own
# tile files closely and cancel it as soon as the first one appears.
deadline=$(( $(date +%s) + TIMEOUT ))
paths=()
while [ "${#paths[@]}" -eq 0 ]; do
    st=$(job_states "${ARRAY_JOB}_$VICTIM")
    if [ "$st" = RUNNING ]; then
        mapfile -t paths < <(shard_paths "$OUT2" "$VICTIM" "$NSHARDS")
    elif grep -Eq 'COMPLETED|FAILED|CANCELLED|TIMEOUT' <<<"$st"; then
        fail "task ${ARRAY_JOB}_$VICTIM ended ($st) before it could be cancelled"
    fi
    [ "$(date +%s)" -ge "$deadline" ] && fail "task ${ARRAY_JOB}_$VICTIM did not start (state '$st')"
    [ "${#paths[@]}" -gt 0 ] || sleep 0.2
done
TILES=${#paths[@]}
while :; do
    d=$(count_existing "${paths[@]}")
    if [ "$d" -ge 1 ]; then
        [ "$d" -lt "$TILES" ] || fail "task $VICTIM wrote all its $TILES tiles before it could be cancelled (raise SELFTEST_STEPS)"
        scancel "${ARRAY_JOB}_$VICTIM" || fail "scancel ${ARRAY_JOB}_$VICTIM failed"
        killed="$d/$TILES"
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        fail "task ${ARRAY_JOB}_$VICTIM wrote no tile within ${TIMEOUT}s (state '$(job_states "${ARRAY_JOB}_$VICTIM")')"
    fi
    sleep 0.05
done
log "scancel ${ARRAY_JOB}_$VICTIM after it had written $killed of its tiles"
wait_done "array with a cancelled task" "$ARRAY_JOB" "$ASSEMBLE_JOB"
want=$(for k in $(seq 0 $((NSHARDS - 1))); do [ "$k" = "$VICTIM" ] && echo CANCELLED || echo COMPLETED; done | sort | tr '\n' ' ' | sed 's/ $//')
expect_states "$ARRAY_JOB" "$want" "array with a cancelled task"
st=$(states "$ASSEMBLE_JOB")
[ "$st" = CANCELLED ] || fail "assembly job $ASSEMBLE_JOB is '$st', expected CANCELLED (--kill-on-invalid-dep)"
[ ! -e "$OUT2/st.mp4" ] || fail "an MP4 was written although a shard is missing"
d_left=$(count_existing "${paths[@]}"); t_left=$TILES
[ "$d_left" -ge 1 ] && [ "$d_left" -lt "$t_left" ] || fail "after scancel shard $VICTIM has $d_left/$t_left tiles, expected some but not all"
pass "task $VICTIM cancelled with $d_left/$t_left tiles done, other tasks COMPLETED, assembly job $ASSEMBLE_JOB CANCELLED (dependency never satisfied)"

rc=0
"$PY" -m fractaltrain assemble "$OUT2" --quiet >"$WORK/assemble_fail.log" 2>&1 || rc=$?
sed 's/^/    /' "$WORK/assemble_fail.log" | head -n 8
[ "$rc" -eq 1 ] || fail "fractaltrain assemble with a missing shard exited $rc, expected 1"
grep -q "$((t_left - d_left)) tile(s) missing; owned by shard(s) $VICTIM/$NSHARDS\$" "$WORK/assemble_fail.log" \
    || fail "assemble did not report exactly $((t_left - d_left)) missing tiles of shard $VICTIM/$NSHARDS"
owners=$(sed -n 's/.*-> shard \([0-9]*\/[0-9]*\)$/\1/p' "$WORK/assemble_fail.log" | sort -u | tr '\n' ' ')
[ "$owners" = "$VICTIM/$NSHARDS " ] || fail "missing tiles listed with owners '$owners', expected only $VICTIM/$NSHARDS"
[ ! -e "$OUT2/st.mp4" ] || fail "a failed assemble wrote an MP4"
pass "fractaltrain assemble exits 1 listing $((t_left - d_left)) missing tiles, all owned by shard $VICTIM/$NSHARDS"
status=$("$PY" -m fractaltrain status "$OUT2") || fail "fractaltrain status failed"
echo "    status: ${status%%$'\n'*}"

# Resubmit the one index by hand, the way the README shows it.
CENTER2=$(cat "$OUT2/center.txt")
RESUB=$(env NSHARDS=$NSHARDS CONFIG="$CFG" OUT="$OUT2" FRAMES=12 SIZE=32x20 DEPTH=1.5 CENTER="$CENTER2" \
    sbatch --parsable --array="$VICTIM" --cpus-per-task=1 --mem=512M --time=10 \
    --output="$OUT2/logs/resubmit_%A_%a.out" "$HERE/zoom_array.sbatch") || fail "sbatch --array=$VICTIM failed"
RESUB=${RESUB%%;*}
ASM2=$(env OUT="$OUT2" sbatch --parsable --dependency="afterok:$RESUB" --kill-on-invalid-dep=yes \
    --cpus-per-task=1 --mem=512M --time=10 --output="$OUT2/logs/assemble2_%j.out" "$HERE/assemble.sbatch") \
    || fail "sbatch assemble.sbatch failed"
ASM2=${ASM2%%;*}
MYJOBS+=("$RESUB" "$ASM2")
log "resubmitted index $VICTIM as $RESUB, assembly $ASM2"
wait_done "resubmitted task + assembly" "$RESUB" "$ASM2"
expect_states "$RESUB" COMPLETED "resubmitted task"
expect_states "$ASM2" COMPLETED "second assembly"
line=$(grep -h "^shard $VICTIM/$NSHARDS: " "$OUT2"/logs/resubmit_"${RESUB}"_"$VICTIM".out || true)
[ "$line" = "shard $VICTIM/$NSHARDS: $((t_left - d_left)) tiles computed, $d_left already done" ] \
    || fail "resubmitted task reported '$line', expected $((t_left - d_left)) computed and $d_left already done"
msg=$(compare_zoom "$OUT2" "$WORK/single" 2>&1) || { echo "$msg"; fail "requeued result differs from single-process run"; }
T_REQUEUE=$(( $(date +%s) - T ))
pass "resubmitted task $RESUB ('$line') + assembly $ASM2 COMPLETED; vs single-process: $msg (${T_REQUEUE}s)"

# ---------------------------------------------------------------- 3. render array
if [ "${SELFTEST_RENDER:-1}" = 1 ]; then
    log "3/3: render_array.sbatch (2 shards) + assemble.sbatch vs single render"
    T=$(date +%s)
    OUT3="$WORK/render"
    mkdir -p "$OUT3/logs"
    R=$(env NSHARDS=2 CONFIG="$CFG" OUT="$OUT3" sbatch --parsable --array=0-1 --cpus-per-task=1 --mem=512M \
        --time=10 --output="$OUT3/logs/render_%A_%a.out" "$HERE/render_array.sbatch") || fail "sbatch render_array.sbatch failed"
    R=${R%%;*}
    A=$(env OUT="$OUT3" sbatch --parsable --dependency="afterok:$R" --kill-on-invalid-dep=yes --cpus-per-task=1 \
        --mem=512M --time=10 --output="$OUT3/logs/assemble_%j.out" "$HERE/assemble.sbatch") || fail "sbatch assemble.sbatch failed"
    A=${A%%;*}
    MYJOBS+=("$R" "$A")
    wait_done "render array + assembly" "$R" "$A"
    expect_states "$R" "COMPLETED COMPLETED" "render array"
    expect_states "$A" COMPLETED "render assembly"
    "$PY" -m fractaltrain render "$CFG" --out "$WORK/render_single" --quiet >/dev/null 2>&1 || fail "single render failed"
    cmp -s "$OUT3/st.png" "$WORK/render_single/st.png" || fail "render: PNG differs from single-process run"
    "$PY" -c 'import sys, numpy as np; a, b = (np.load(p)["measure"] for p in sys.argv[1:]); assert a.tobytes() == b.tobytes()' \
        "$OUT3/st.npz" "$WORK/render_single/st.npz" || fail "render: measure differs from single-process run"
    pass "render array $R (2 tasks) + assembly $A: PNG and measure bit-identical to a single render ($(( $(date +%s) - T ))s)"
fi

log "timings: array ${T_ARRAY}s, single ${T_SINGLE}s, requeue ${T_REQUEUE}s"
