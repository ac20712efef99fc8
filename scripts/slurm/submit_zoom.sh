#!/usr/bin/env bash
# Submit a sharded fractaltrain zoom to Slurm:
#
#     [locate job] --afterok--> zoom array (NSHARDS tasks) --afterok--> assembly job
#
# and print the job ids.  Every setting below can be overridden from the
# environment, e.g.
#
#     source ~/venvs/fractaltrain/bin/activate     # jobs inherit PATH
#     CONFIG=configs/relu.yaml OUT=/scratch/$USER/relu NSHARDS=32 CPUS=8 \
#         PARTITION=compute DEPTH=12 bash scripts/slurm/submit_zoom.sh
#
# Rerun shard(s) that failed or were cancelled (same settings, plus ARRAY):
#     ARRAY=5,17 CONFIG=... OUT=... NSHARDS=32 ... bash scripts/slurm/submit_zoom.sh
# (finished tiles are skipped; the assembly job then runs after those tasks).
#
# Output: human-readable lines, then machine-readable lines
#     locate_job=<id>        (only with LOCATE=job and no CENTER)
#     array_job=<id>
#     assemble_job=<id>
# DRY_RUN=1 prints the sbatch commands instead of running them.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---------------------------------------------------------------- resources
PARTITION=${PARTITION:-}            # sbatch --partition; empty = the cluster's default
ACCOUNT=${ACCOUNT:-}                # sbatch --account; empty = your default account
SBATCH_ARGS=${SBATCH_ARGS:-}        # more sbatch options for all jobs, e.g. "--qos=long --constraint=avx2"
TIME_LIMIT=${TIME_LIMIT:-12:00:00}  # wall time per array task (an interrupted task resumes when rerun)
CPUS=${CPUS:-4}                     # --cpus-per-task of each array task = its kernel threads
MEM=${MEM:-4G}                      # memory per array task
LOCATE_TIME=${LOCATE_TIME:-02:00:00}
LOCATE_CPUS=${LOCATE_CPUS:-$CPUS}
LOCATE_MEM=${LOCATE_MEM:-$MEM}
ASSEMBLE_TIME=${ASSEMBLE_TIME:-02:00:00}
ASSEMBLE_CPUS=${ASSEMBLE_CPUS:-2}
ASSEMBLE_MEM=${ASSEMBLE_MEM:-8G}

# ---------------------------------------------------------------- what to render
NSHARDS=${NSHARDS:-8}               # array tasks; each computes every NSHARDS-th tile
ARRAY=${ARRAY:-}                    # indices to submit; default 0-(NSHARDS-1); "0-63%16" throttles
CONFIG=${CONFIG:-configs/demo.yaml} # experiment config
OUT=${OUT:-out/zoom}                # output folder; must be visible from all nodes
FRAMES=${FRAMES:-300}               # video frames
SIZE=${SIZE:-1280x720}              # video WIDTHxHEIGHT (even numbers)
DEPTH=${DEPTH:-10}                  # zoom depth in decades of window width
CENTER=${CENTER:-}                  # target X,Y; empty = find it first (see LOCATE)
LOCATE=${LOCATE:-job}               # without CENTER: job (a locate job before the array),
                                    # local (run locate here, now) or none (every task locates itself)
SEED=${SEED:-0}                     # locate seed: 0 = boundary nearest the centre
STEPS=${STEPS:-}                    # training steps (overrides the config's training.steps)
ZOOM_ARGS=${ZOOM_ARGS:-}            # more zoom flags, e.g. "--fps 24 --palette rdylbu"
                                    # (not --preview / --frame-range / --recolor)
LOGDIR=${LOGDIR:-$OUT/logs}         # job logs
FRACTALTRAIN=${FRACTALTRAIN:-fractaltrain}  # e.g. "/path/venv/bin/python -m fractaltrain"
DRY_RUN=${DRY_RUN:-0}

# ---------------------------------------------------------------- checks
say() { echo "[submit] $*"; }
die() { echo "[submit] ERROR: $*" >&2; exit 2; }

[[ $NSHARDS =~ ^[1-9][0-9]*$ ]] || die "NSHARDS must be a positive integer, got '$NSHARDS'"
[ -r "$CONFIG" ] || die "CONFIG '$CONFIG' is not a readable file"
case "$LOCATE" in job|local|none) ;; *) die "LOCATE must be job, local or none, got '$LOCATE'" ;; esac
read -r -a FT <<<"$FRACTALTRAIN"
command -v "${FT[0]}" >/dev/null 2>&1 \
    || die "'${FT[0]}' not on PATH: activate the environment that has fractaltrain (the jobs inherit it) or set FRACTALTRAIN"
[ "$DRY_RUN" = 1 ] || command -v sbatch >/dev/null 2>&1 || die "sbatch not found: not on a Slurm submit host?"
[ -n "$ARRAY" ] || ARRAY="0-$((NSHARDS - 1))"

# Jobs start in the submit directory, but absolute paths survive any --chdir.
abspath() { realpath -m -- "$1"; }
CONFIG=$(abspath "$CONFIG")
OUT=$(abspath "$OUT")
LOGDIR=$(abspath "$LOGDIR")
NAME=$(basename "$CONFIG"); NAME=${NAME%.*}
[ "$DRY_RUN" = 1 ] || mkdir -p "$OUT" "$LOGDIR"

# What the job scripts read (sbatch --export=ALL passes the environment on;
# values with commas, like CENTER, cannot go into --export=VAR=... itself).
CENTER_FILE=""
export NSHARDS CONFIG OUT FRAMES SIZE DEPTH CENTER CENTER_FILE SEED STEPS ZOOM_ARGS FRACTALTRAIN

resources() { # time cpus mem -> sbatch options in RES
    RES=(--time="$1" --cpus-per-task="$2" --mem="$3")
    [ -n "$PARTITION" ] && RES+=(--partition="$PARTITION")
    [ -n "$ACCOUNT" ] && RES+=(--account="$ACCOUNT")
    local extra; read -r -a extra <<<"$SBATCH_ARGS"
    RES+=("${extra[@]}")
}
submit() { # sbatch args... script -> job id on stdout
    if [ "$DRY_RUN" = 1 ]; then
        printf '[submit] would run: sbatch --parsable --export=ALL' >&2; printf ' %q' "$@" >&2; echo >&2
        local script; script=$(basename "${*: -1}")
        echo "<${script%.sbatch}-job-id>"
        return
    fi
    local out
    out=$(sbatch --parsable --export=ALL "$@") || die "sbatch $* failed"
    echo "${out%%;*}"
}

# ---------------------------------------------------------------- locate
LOCATE_JOB=""
DEP=()
if [ -n "$CENTER" ]; then
    say "target: CENTER=$CENTER"
elif [ "$LOCATE" = local ]; then
    say "running locate here ..."
    a=(locate "$CONFIG" --out "$OUT" --depth "$DEPTH" --size "$SIZE" --seed "$SEED" --quiet)
    [ -n "$STEPS" ] && a+=(--steps "$STEPS")
    if [ "$DRY_RUN" = 1 ]; then
        CENTER="<locate>"
    else
        CENTER=$("${FT[@]}" "${a[@]}" | head -n 1) || die "locate failed"
    fi
    export CENTER
    say "target: CENTER=$CENTER"
elif [ "$LOCATE" = job ]; then
    CENTER_FILE="$OUT/center.txt"
    export CENTER_FILE
    resources "$LOCATE_TIME" "$LOCATE_CPUS" "$LOCATE_MEM"
    LOCATE_JOB=$(submit "${RES[@]}" --job-name="ft-locate-$NAME" \
        --output="$LOGDIR/locate_%j.out" "$HERE/locate.sbatch")
    DEP=(--dependency="afterok:$LOCATE_JOB" --kill-on-invalid-dep=yes)
    say "locate job $LOCATE_JOB -> $CENTER_FILE"
else
    say "no CENTER and LOCATE=none: every task runs (the same, cached) locate itself"
fi

# ---------------------------------------------------------------- array
resources "$TIME_LIMIT" "$CPUS" "$MEM"
ARRAY_JOB=$(submit "${RES[@]}" "${DEP[@]}" --job-name="ft-zoom-$NAME" --array="$ARRAY" \
    --output="$LOGDIR/zoom_%A_%a.out" "$HERE/zoom_array.sbatch")
say "array job $ARRAY_JOB: tasks $ARRAY of $NSHARDS shards, $CPUS cpu(s) and $MEM each${LOCATE_JOB:+, after locate $LOCATE_JOB}"

# ---------------------------------------------------------------- assembly
resources "$ASSEMBLE_TIME" "$ASSEMBLE_CPUS" "$ASSEMBLE_MEM"
ASSEMBLE_JOB=$(submit "${RES[@]}" --dependency="afterok:$ARRAY_JOB" --kill-on-invalid-dep=yes \
    --job-name="ft-assemble-$NAME" --output="$LOGDIR/assemble_%j.out" "$HERE/assemble.sbatch")
say "assembly job $ASSEMBLE_JOB after array $ARRAY_JOB -> $OUT/$NAME.mp4"
say "progress: squeue --me; ${FT[*]} status $OUT; logs in $LOGDIR"
say "if a task fails, the assembly job is cancelled: rerun the task(s) with ARRAY=<index,...> and the same settings"

[ -n "$LOCATE_JOB" ] && echo "locate_job=$LOCATE_JOB"
echo "array_job=$ARRAY_JOB"
echo "assemble_job=$ASSEMBLE_JOB"
