#!/usr/bin/env bash
# Stop the PostgreSQL that tests/cluster/postgres-up.sh started (only the server named by its
# postmaster.pid, with `pg_ctl stop -m fast`).  The data dir stays, so the next start is quick;
# `--drop` also removes the state dir (a fresh database next time).  Idempotent: with nothing
# running it does nothing and exits 0.
#
# Usage: postgres-down.sh [--quiet] [--drop]      (HNET_PG_DIR as for postgres-up.sh)
set -euo pipefail

STATE_DIR=${HNET_PG_DIR:-/var/tmp/hnet-postgres}
DATA=$STATE_DIR/data
PIDFILE=$DATA/postmaster.pid
QUIET=0 DROP=0
for arg in "$@"; do
    case $arg in
    --quiet) QUIET=1 ;;
    --drop) DROP=1 ;;
    *) echo "postgres-down: unknown argument $arg" >&2 && exit 2 ;;
    esac
done
say() { ((QUIET)) || echo "postgres-down: $*"; }

# shellcheck source=tests/cluster/pidfile.sh
source "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

pid=""
[[ -s $PIDFILE ]] && pid=$(head -n1 "$PIDFILE")
if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(<"/proc/$pid/comm") == postgres ]] &&
    running "$pid"; then
    [[ $(id -u) -eq 0 ]] || {
        echo "postgres-down: must run as root to stop the server postgres-up.sh started" >&2
        exit 2
    }
    BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || {
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            running "$pid" || break
            sleep 0.1
        done
        running "$pid" && kill -KILL "$pid" 2>/dev/null || true
    }
    say "stopped postgres($pid)"
else
    say "nothing running (state dir $STATE_DIR)"
fi
if ((DROP)); then
    rm -rf "$STATE_DIR"
    say "removed $STATE_DIR"
fi
