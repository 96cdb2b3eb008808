#!/usr/bin/env bash
# Start a real single-node SLURM (Debian's slurmctld + slurmd + munge) on this machine,
# for the tests marked `cluster` and for CI.  See tests/cluster/README.md.
#
# Idempotent: when the daemons this script started are still alive and answering, it only
# reports them.  Otherwise it installs the packages (only if missing), writes
# /etc/slurm/slurm.conf, starts munged, slurmctld and slurmd itself (no systemd), waits
# for the node to be idle, runs a smoke job and prints a one-line summary.
#
# Exit codes: 0 = up; 2 = cannot bring SLURM up here, with a one-line reason as the last
# line on stderr (the test suite skips the cluster tests with that line).
#
# Environment (all optional):
#   HNET_SLURM_DIR        state dir: spool, logs, pid files   [/var/tmp/hnet-slurm]
#                         (user munge must be able to reach it: munged writes there)
#   HNET_SLURM_PARTITION  name of the one partition           [hnet]
#   HNET_SLURM_CPUS       CPUs the node offers                [nproc]
#   HNET_SLURM_FORCE=1    back up a slurm.conf this script did not write, then replace it
set -euo pipefail

STATE_DIR=${HNET_SLURM_DIR:-/var/tmp/hnet-slurm}
PARTITION=${HNET_SLURM_PARTITION:-hnet}
CONF=/etc/slurm/slurm.conf # where Debian's SLURM 22.05 looks (compiled-in default)
MARKER="# Written by hnet tests/cluster/slurm-up.sh"
START_TIMEOUT=60 # seconds to wait for the node to become idle
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$SECONDS

log() { echo "slurm-up: $*" >&2; }
# The last stderr line is what the test suite shows when it skips: keep it one line.
# Once we have started daemons, a failure stops them again so nothing half-up is left.
STARTING=0
cannot() {
    if ((STARTING)); then "$HERE/slurm-down.sh" --quiet >/dev/null 2>&1 || true; fi
    echo "slurm-up: cannot start SLURM: $*" >&2
    exit 2
}

# running PID / alive PIDFILE COMM
# shellcheck source=tests/cluster/pidfile.sh
source "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

# Client commands block for MessageTimeout and retry when slurmctld is not answering:
# bound them so a wedged controller turns into exit 2 instead of a hang.
node_state() { timeout 10 sinfo -h -N -p "$PARTITION" -o %t 2>/dev/null | head -n1; }

# Why a daemon failed, from what it printed before daemonizing (*.out) and its log (both
# fresh for each start): its fatal line, else its last error that is not routine noise
# (no PMIx library, no job state on a clean start), else its last log line.
why() { # why NAME LOGFILE
    local files=("$STATE_DIR/log/$1.out" "$2") line fatal error
    fatal=$(grep -h 'fatal' "${files[@]}" 2>/dev/null | tail -n1)
    error=$(grep -h 'error' "${files[@]}" 2>/dev/null |
        grep -v -e pmix -e PMIx -e 'state file' -e 'NOTE:' | tail -n1)
    line=${fatal:+$fatal${error:+ (after $error)}}
    line=${line:-$error}
    [[ -n $line ]] || line=$(tail -n1 "$2" 2>/dev/null)
    echo "${line:-no log}"
}

# munged answers (ours or one that was already running).
munge_ok() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

summary() { # summary WHAT
    local state
    state=$(node_state || true)
    echo "slurm-up: SLURM $1: partition=$PARTITION node=$NODE state=${state:-?}" \
        "cpus=$CPUS mem=${MEM_MB}MB dir=$STATE_DIR conf=$CONF" \
        "pids(munged=$(cat "$MUNGE_PID" 2>/dev/null || echo external)" \
        "slurmctld=$(cat "$CTLD_PID") slurmd=$(cat "$SLURMD_PID")) in $((SECONDS - T0))s"
}

# --- packages: install only what is missing, quietly ----------------------------------
need_install=0
for cmd in slurmctld slurmd sinfo munged; do
    command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || need_install=1
done
# Root is needed to install or start anything; a cluster that is already up can be
# reported to anyone (below).
need_root() { [[ $(id -u) -eq 0 ]] || cannot "must run as root to $1"; }
if ((need_install)); then
    need_root "install slurmctld slurmd slurm-client munge"
    command -v apt-get >/dev/null 2>&1 ||
        cannot "slurmctld/slurmd/sinfo/munged missing and apt-get not available to install them"
    log "installing slurmctld slurmd slurm-client munge with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp /tmp/hnet-slurm-apt.XXXXXX)
    # The packages' postinst would start the daemons through their init scripts; we
    # start them ourselves (with our own pid files), so deny that for the install when
    # the machine does not already deny it (Docker-style images ship a policy-rc.d).
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_install() {
        apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 \
            slurmctld slurmd slurm-client munge >>"$apt_log" 2>&1
    }
    # Try with the package lists as they are (fast); refresh them only if that fails
    # (no lists yet on a fresh machine, or stale ones naming versions no longer served).
    ok=1
    if ! apt_install; then
        if ! apt-get update -q -o DPkg::Lock::Timeout=120 >>"$apt_log" 2>&1 || ! apt_install; then
            ok=0
        fi
    fi
    if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
    if ((!ok)); then
        tail -n 5 "$apt_log" >&2
        cannot "apt-get could not install slurmctld slurmd slurm-client munge (log: $apt_log)"
    fi
    rm -f "$apt_log"
fi
PATH=$PATH:/usr/sbin:/sbin # the daemons live in /usr/sbin

# --- what the node offers ---------------------------------------------------------------
NODE=$(hostname -s)
CPUS=${HNET_SLURM_CPUS:-$(nproc)}
# RealMemory as slurmd itself measures it: a larger configured value drains the node.
MEM_MB=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
[[ -n $MEM_MB ]] || MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)

RUN_DIR=$STATE_DIR/run # slurmctld.pid, slurmd.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_DIR=$STATE_DIR/munge # munged runs as user munge: its pid file and log live here
MUNGE_PID=$MUNGE_DIR/munged.pid

# --- slurm.conf ---------------------------------------------------------------------------
new_conf=$(
    cat <<EOF
$MARKER for the cluster tests; slurm-down.sh stops the daemons.
ClusterName=hnet
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
# Single-node test cluster run as root: no slurm user, no cgroups, no accounting database.
SlurmUser=root
SlurmdUser=root
MpiDefault=none
# proctrack/linuxproc left orphaned job processes after scancel; pgid kills the job's
# process group.  task/none: no cgroup/affinity setup in a container.
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that ask for no memory get this much per CPU (bookkeeping only: task/none does not
# enforce it) instead of the whole node, so jobs without --mem can run side by side.
DefMemPerCPU=1024
# Let HNET_SLURM_CPUS offer more CPUs than the hardware has without draining the node.
SlurmdParameters=config_overrides
# No accounting database: Snakemake's status query is 'squeue', which sees a finished job
# only for MinJobAge seconds after it ended (the executor plugin wants >= 3 x its first
# status-check delay).
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
# Preemption/requeue tests use 'scontrol requeue'; a node that was down comes back alone.
JobRequeue=1
ReturnToService=2
# A requeued job may start again only after cred_expire seconds (default 120), and then
# waits for the next periodic scheduler pass (sched_interval, default 60 s): both shortened
# so a requeue test reruns its job in about 10 s, not 3 minutes.  The credential is
# checked when the local slurmd gets the launch request: 10 s is plenty on one node.
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=2,bf_interval=5
KillWait=5
InactiveLimit=0
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)

# Never overwrite a slurm.conf somebody else wrote (a real cluster's, say).
if [[ -e $CONF ]] && ! grep -qxF -- "$MARKER for the cluster tests; slurm-down.sh stops the daemons." "$CONF"; then
    if [[ ${HNET_SLURM_FORCE:-} == 1 ]]; then
        backup=$CONF.before-hnet.$(date +%Y%m%d%H%M%S)
        cp -p "$CONF" "$backup"
        log "backed up the existing $CONF to $backup"
    else
        cannot "$CONF exists and was not written by this script (set HNET_SLURM_FORCE=1 to back it up and replace it)"
    fi
fi

# --- already up? --------------------------------------------------------------------------
up_state() { # prints the node state if our daemons are alive with this very slurm.conf
    alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd && munge_ok || return 1
    if [[ ! -e $CONF || $(<"$CONF") != "$new_conf" ]]; then
        log "slurm.conf changed: restarting the daemons"
        return 1
    fi
    node_state || true
}
if state=$(up_state); then
    case $state in
    idle | mix | alloc | comp*)
        summary "already up"
        exit 0
        ;;
    down* | drain* | drng*)
        # ReturnToService=2 normally brings the node back; nudge it if it did not.
        timeout 10 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        sleep 1
        summary "already up (node resumed)"
        exit 0
        ;;
    esac
    log "daemons alive but node state is '${state:-no answer}': restarting them"
fi

need_root "start munged, slurmctld and slurmd"
# Some of our daemons died, or the config changed: stop what is left of ours, start afresh.
"$HERE/slurm-down.sh" --quiet || true

STARTING=1
mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/slurmd" "$STATE_DIR/log" "$RUN_DIR"
# Fresh logs for each start; the previous start's stay as *.log.1.
for f in "$STATE_DIR"/log/slurmctld.log "$STATE_DIR"/log/slurmd.log "$MUNGE_DIR"/munged.log; do
    if [[ -e $f ]]; then mv -f "$f" "$f.1"; fi
done
chmod 755 "$STATE_DIR"
mkdir -p "$(dirname "$CONF")"
printf '%s\n' "$new_conf" >"$CONF"

# --- munge ----------------------------------------------------------------------------------
getent passwd munge >/dev/null || cannot "user 'munge' missing (broken munge package?)"
if [[ ! -s /etc/munge/munge.key ]]; then
    # Debian's postinst usually creates it; a local single-node key just has to exist.
    install -d -o munge -g munge -m 700 /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
if munge_ok; then
    log "using the munged that is already running (not started here, so not stopped by slurm-down)"
else
    # No systemd here to create /run/munge (the socket dir) for us.
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 755 "$MUNGE_DIR" # readable: non-root callers check the pid
    runuser -u munge -- munged --pid-file="$MUNGE_PID" --log-file="$MUNGE_DIR/munged.log" \
        </dev/null >"$STATE_DIR/log/munged.out" 2>&1 ||
        cannot "munged failed to start: $(why munged "$MUNGE_DIR/munged.log")"
    for _ in $(seq 50); do
        munge_ok && break
        sleep 0.1
    done
    munge_ok ||
        cannot "munged started but munge/unmunge fails (see $MUNGE_DIR/munged.log)"
fi

# --- slurmctld, slurmd ----------------------------------------------------------------------
# Both daemonize and write their pid files.  slurmctld -c: start from a clean job state,
# so jobs of an earlier session do not come back.  All fds go to files: a caller that
# captures our output (pytest's subprocess) must not wait on a pipe a daemon holds.
slurmctld -c </dev/null >"$STATE_DIR/log/slurmctld.out" 2>&1 ||
    cannot "slurmctld failed to start: $(why slurmctld "$STATE_DIR/log/slurmctld.log")"
slurmd </dev/null >"$STATE_DIR/log/slurmd.out" 2>&1 ||
    cannot "slurmd failed to start: $(why slurmd "$STATE_DIR/log/slurmd.log")"

deadline=$((SECONDS + START_TIMEOUT))
# The forked daemon writes its pid file a moment after the parent returned.
until { alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd; } || ((SECONDS >= deadline)); do
    sleep 0.2
done
state=
while ((SECONDS < deadline)); do
    alive "$CTLD_PID" slurmctld ||
        cannot "slurmctld exited: $(why slurmctld "$STATE_DIR/log/slurmctld.log")"
    alive "$SLURMD_PID" slurmd ||
        cannot "slurmd exited: $(why slurmd "$STATE_DIR/log/slurmd.log")"
    state=$(node_state || true)
    [[ $state == idle ]] && break
    sleep 0.5
done
[[ $state == idle ]] ||
    cannot "node $NODE not idle after ${START_TIMEOUT}s (state '${state:-no answer}'; logs in $STATE_DIR/log)"

# --- smoke job: scheduling, munge credentials and job launch all work ------------------------
smoke_err=$STATE_DIR/log/smoke.err
if ! smoke=$(timeout 60 srun -N1 -n1 -t 1 -J hnet-smoke -p "$PARTITION" hostname 2>"$smoke_err"); then
    cannot "smoke job 'srun hostname' failed: $(tail -n1 "$smoke_err")"
fi
STARTING=0

summary "up (smoke job ran on $smoke)"
