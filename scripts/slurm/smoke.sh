#!/usr/bin/env bash
# Smoke test of the single-node SLURM: starts it (start_single_node.sh), then
#   1. a 4-task array job, each task writing "$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT"
#      to its own file, plus a job with --dependency=afterok:<array> that
#      concatenates them; checks the result.
#   2. scancel of one running array task, then resubmission of just that index
#      (sbatch --array=2) and a dependent concatenation again; checks the result.
# Prints OK and exits 0 on success; exits non-zero with a reason otherwise.
#
# Environment: SMOKE_TIMEOUT (seconds per wait, default 180), SMOKE_KEEP=1 to
# keep the temp folder.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${SMOKE_TIMEOUT:-180}
T0=$(date +%s)

log() { echo "[slurm-smoke] $*"; }
fail() {
    echo "[slurm-smoke] FAIL: $*" >&2
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        echo "----- files in $WORK -----" >&2
        ls -la "$WORK" >&2 || true
        for f in "$WORK"/*.out; do [ -f "$f" ] && { echo "== $f" >&2; cat "$f" >&2; }; done
    fi
    echo "----- squeue -----" >&2; squeue >&2 2>&1 || true
    echo "----- sinfo -----" >&2; sinfo -N -l >&2 2>&1 || true
    for f in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
        [ -f "$f" ] && { echo "----- tail $f -----" >&2; tail -n 30 "$f" >&2; }
    done
    [ -n "${WORK:-}" ] && echo "[slurm-smoke] kept $WORK for inspection" >&2
    exit 1
}

bash "$HERE/start_single_node.sh" || fail "start_single_node.sh failed"

# Must be readable by slurmd (same machine, running as root) -- /tmp is fine.
WORK=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 0755 "$WORK"
log "work dir $WORK"

# ---------------------------------------------------------------- helpers
# shellcheck source=jobwait.sh
source "$HERE/jobwait.sh"
submit() { # sbatch args... -> prints job id
    local out
    out=$(sbatch --parsable "$@") || fail "sbatch $* failed"
    echo "${out%%;*}"
}

# ---------------------------------------------------------------- job scripts
cat > "$WORK/task.sh" <<'EOF'
#!/bin/bash
# Array task: record our index and the array size seen by this task.
set -eu
if [ -e "$WORK/block_$SLURM_ARRAY_TASK_ID" ]; then
    sleep 600   # the scancel demo cancels this task while it sleeps here
fi
echo "$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT" > "$WORK/part_$SLURM_ARRAY_TASK_ID.txt"
EOF
cat > "$WORK/concat.sh" <<'EOF'
#!/bin/bash
set -eu
cat "$WORK"/part_0.txt "$WORK"/part_1.txt "$WORK"/part_2.txt "$WORK"/part_3.txt > "$WORK/all.txt"
EOF
chmod +x "$WORK/task.sh" "$WORK/concat.sh"
# shellcheck disable=SC2054  # the comma is part of the --export value
COMMON=(--export=ALL,WORK="$WORK" --chdir="$WORK" --ntasks=1 --cpus-per-task=1 --time=10)

# ---------------------------------------------------------------- 1. array + afterok
log "1/2: array 0-3 + afterok concatenation"
ARR=$(submit "${COMMON[@]}" --job-name=smoke-array --array=0-3 -o "$WORK/array_%A_%a.out" "$WORK/task.sh")
CAT=$(submit "${COMMON[@]}" --job-name=smoke-concat --dependency=afterok:"$ARR" \
    --kill-on-invalid-dep=yes -o "$WORK/concat_%j.out" "$WORK/concat.sh")
log "array job $ARR, dependent job $CAT"
wait_done "array+concat" "$ARR" "$CAT"
expect_states "$ARR" "COMPLETED COMPLETED COMPLETED COMPLETED"
expect_states "$CAT" "COMPLETED"
want=$'0 4\n1 4\n2 4\n3 4'
[ -f "$WORK/all.txt" ] || fail "dependent job did not write $WORK/all.txt"
[ "$(cat "$WORK/all.txt")" = "$want" ] \
    || fail "unexpected all.txt: $(paste -sd'|' "$WORK/all.txt") (want $(paste -sd'|' <<<"$want"))"
log "1/2 passed ($(paste -sd'|' "$WORK/all.txt"))"

# ---------------------------------------------------------------- 2. scancel + resubmit one index
log "2/2: scancel array task 2, resubmit --array=2"
rm -f "$WORK"/part_*.txt "$WORK/all.txt"
touch "$WORK/block_2"
ARR2=$(submit "${COMMON[@]}" --job-name=smoke-array2 --array=0-3 -o "$WORK/array2_%A_%a.out" "$WORK/task.sh")
log "array job $ARR2; waiting for task ${ARR2}_2 to run"
deadline=$(( $(date +%s) + TIMEOUT ))
until [ "$(job_states "${ARR2}_2")" = RUNNING ]; do
    [ "$(date +%s)" -ge "$deadline" ] && fail "task ${ARR2}_2 never started running"
    sleep 0.5
done
scancel "${ARR2}_2" || fail "scancel ${ARR2}_2 failed"
wait_done "array with cancelled task" "$ARR2"
expect_states "$ARR2" "CANCELLED COMPLETED COMPLETED COMPLETED"
[ ! -e "$WORK/part_2.txt" ] || fail "cancelled task 2 still wrote its output"
for i in 0 1 3; do
    [ "$(cat "$WORK/part_$i.txt" 2>/dev/null)" = "$i 4" ] || fail "task $i of $ARR2 wrote wrong/no output"
done

rm -f "$WORK/block_2"
RESUB=$(submit "${COMMON[@]}" --job-name=smoke-resub --array=2 -o "$WORK/resub_%A_%a.out" "$WORK/task.sh")
CAT2=$(submit "${COMMON[@]}" --job-name=smoke-concat2 --dependency=afterok:"$RESUB" \
    --kill-on-invalid-dep=yes -o "$WORK/concat2_%j.out" "$WORK/concat.sh")
log "resubmitted index 2 as $RESUB, dependent job $CAT2"
wait_done "resubmit+concat" "$RESUB" "$CAT2"
expect_states "$RESUB" "COMPLETED"
expect_states "$CAT2" "COMPLETED"
# NB: a resubmitted single index sees SLURM_ARRAY_TASK_COUNT=1 (and
# SLURM_ARRAY_TASK_MIN/MAX=2), not 4: real shard jobs must get the shard
# count from their own arguments, not from SLURM_ARRAY_TASK_COUNT.
want=$'0 4\n1 4\n2 1\n3 4'
[ "$(cat "$WORK/all.txt" 2>/dev/null)" = "$want" ] \
    || fail "unexpected all.txt after resubmit: $(paste -sd'|' "$WORK/all.txt" 2>/dev/null) (want $(paste -sd'|' <<<"$want"))"
log "2/2 passed ($(paste -sd'|' "$WORK/all.txt"))"

if [ "${SMOKE_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
log "total $(( $(date +%s) - T0 ))s"
echo OK
