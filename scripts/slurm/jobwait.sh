# Slurm job-state helpers shared by smoke.sh and selftest.sh (source it).
# The caller defines fail MESSAGE (prints and exits) and TIMEOUT (seconds).

# Job state(s) of a job id (an array job id gives one line per task).
# Completed jobs stay visible to scontrol for MinJobAge (300 s).
job_states() {
    scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}

# Wait until no job/task of the given ids is pending, running or completing.
wait_done() { # desc id...
    local desc=$1; shift
    local deadline=$(( $(date +%s) + TIMEOUT )) id st busy
    while :; do
        busy=0
        for id in "$@"; do
            st=$(job_states "$id" || true)
            [ -n "$st" ] || fail "$desc: job $id unknown to scontrol"
            if grep -Eq 'PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|RESIZING' <<<"$st"; then
                busy=1
            fi
        done
        [ "$busy" -eq 0 ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && fail "$desc: jobs $* not finished after ${TIMEOUT}s"
        sleep 1
    done
}

# Sorted states of a job's tasks, space separated.
states() { job_states "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }

expect_states() { # id "sorted states" [what]
    local got; got=$(states "$1")
    [ "$got" = "$2" ] || fail "${3:-job $1}: job $1 states '$got', expected '$2'"
}
