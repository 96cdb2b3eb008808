# shellcheck shell=bash
# Pid-file helpers shared by slurm-up.sh and slurm-down.sh (sourced, not run).

# A killed daemon stays a zombie until init reaps it (here that can take seconds): a pid
# whose state is Z or X is not running.
running() { # running PID
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # the state letter follows "(comm) "
    [[ ${stat:0:1} != [ZX] ]]
}

# A pid file is ours and alive if the process it names runs the expected program
# (guards against a stale pid file whose pid was reused by something else).
alive() { # alive PIDFILE COMM
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$2" ]] && running "$pid"
}
