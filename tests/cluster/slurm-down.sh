#!/usr/bin/env bash
# Stop the single-node SLURM that tests/cluster/slurm-up.sh started: only the daemons named
# by its pid files (slurmd, slurmctld, and munged if it started one), after cancelling the
# cluster's jobs so no job process outlives its slurmd.  Packages, slurm.conf, logs and
# the munge key stay.  Idempotent: with nothing running it does nothing and exits 0.
#
# Usage: slurm-down.sh [--quiet]      (HNET_SLURM_DIR as for slurm-up.sh)
set -euo pipefail

STATE_DIR=${HNET_SLURM_DIR:-/var/tmp/hnet-slurm}
QUIET=0
[[ ${1:-} == --quiet ]] && QUIET=1
STOP_TIMEOUT=30 # seconds to wait for a daemon to exit after SIGTERM before SIGKILL

say() { ((QUIET)) || echo "slurm-down: $*"; }

# running PID / alive PIDFILE COMM
# shellcheck source=tests/cluster/pidfile.sh
source "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

stopped=()
stop() { # stop COMM:PIDFILE...  (SIGTERM to all, then wait: each takes ~2 s to exit)
    local item comm file pid pids=() files=()
    for item in "$@"; do
        comm=${item%%:*} file=${item#*:}
        if alive "$file" "$comm"; then
            pid=$(<"$file")
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid") files+=("$file")
            stopped+=("$comm($pid)")
        else
            rm -f "$file" # stale or absent: nothing of ours to stop
        fi
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq $((STOP_TIMEOUT * 10))); do
            running "$pid" || break
            sleep 0.1
        done
        if running "$pid"; then
            say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    done
    rm -f "${files[@]}"
}

CTLD_PID=$STATE_DIR/run/slurmctld.pid
SLURMD_PID=$STATE_DIR/run/slurmd.pid
MUNGE_PID=$STATE_DIR/munge/munged.pid

if ! alive "$CTLD_PID" slurmctld && ! alive "$SLURMD_PID" slurmd && ! alive "$MUNGE_PID" munged; then
    rm -f "$CTLD_PID" "$SLURMD_PID" "$MUNGE_PID"
    say "nothing running (state dir $STATE_DIR)"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || {
    echo "slurm-down: must run as root to stop the daemons slurm-up.sh started" >&2
    exit 2
}

# Cancel every job while slurmctld and slurmd are both up, so the job processes are killed
# by SLURM (KillWait=5) rather than left running without a slurmd.
# (Skipped when munged is dead: every SLURM command would then hang for its timeout.)
if alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd &&
    timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
    jobs=$(timeout 10 squeue -h -t PENDING,RUNNING,SUSPENDED,REQUEUED,REQUEUE_HOLD -o %A 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086 # one word per job id
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 30); do
            [[ -z $(timeout 10 squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null || true) ]] && break
            sleep 0.5
        done
        say "cancelled jobs: ${jobs//$'\n'/ }"
    fi
fi

# The SLURM daemons together (jobs are gone, nothing to hand over), munged after them
# (they authenticate through it until they exit).
stop "slurmd:$SLURMD_PID" "slurmctld:$CTLD_PID"
stop "munged:$MUNGE_PID"
say "stopped ${stopped[*]:-nothing} (state dir $STATE_DIR kept; packages stay installed)"
