#!/usr/bin/env bash
# Start a real PostgreSQL (Debian's `postgresql` package) for the MLflow tracking server of the
# tests marked `cluster`, the way slurm-up.sh starts SLURM.  See tests/cluster/README.md.
#
# Idempotent: when the server this script started is alive and answering, it only reports it.
# Otherwise it installs the package (only if missing), runs initdb in a state dir under
# /var/tmp, starts `postgres` directly as the postgres user (no systemd, no pg_ctlcluster),
# listening on 127.0.0.1 only, and creates the role and database for MLflow.
#
# Prints the database URI (postgresql://USER:PASSWORD@127.0.0.1:PORT/DB) as the last stdout line.
# Exit codes: 0 = up; 2 = cannot start PostgreSQL here, with a one-line reason as the last line
# on stderr (the tests skip with that line).
#
# Environment (all optional):
#   HNET_PG_DIR    state dir: data/, log, socket       [/var/tmp/hnet-postgres]
#   HNET_PG_PORT   TCP port on 127.0.0.1               [55432]
#   HNET_PG_DB     database and role for MLflow        [mlflow]
set -euo pipefail

STATE_DIR=${HNET_PG_DIR:-/var/tmp/hnet-postgres}
PORT=${HNET_PG_PORT:-55432}
DB=${HNET_PG_DB:-mlflow}
PASSWORD=hnet-test # a throw-away test database on 127.0.0.1 only
DATA=$STATE_DIR/data
PIDFILE=$DATA/postmaster.pid
LOG=$STATE_DIR/postgres.log
T0=$SECONDS

log() { echo "postgres-up: $*" >&2; }
cannot() {
    echo "postgres-up: cannot start PostgreSQL: $*" >&2
    exit 2
}
uri() { echo "postgresql://$DB:$PASSWORD@127.0.0.1:$PORT/$DB"; }

# shellcheck source=tests/cluster/pidfile.sh
source "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

# postmaster.pid's first line is the server's pid; the process runs `postgres`.
ours_alive() {
    local pid
    [[ -s $PIDFILE ]] || return 1
    pid=$(head -n1 "$PIDFILE")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(<"/proc/$pid/comm") == postgres ]] &&
        running "$pid"
}
as_pg() { runuser -u postgres -- "$@"; }
psql_ok() { as_pg "$BIN/psql" -h "$STATE_DIR" -p "$PORT" -d postgres -Atqc "$1" 2>/dev/null; }

# --- binaries: install only when missing -----------------------------------------------
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
BIN=$(find_bin)
if [[ -z $BIN || ! -x $BIN/initdb ]]; then
    [[ $(id -u) -eq 0 ]] || cannot "must run as root to install postgresql"
    command -v apt-get >/dev/null || cannot "postgresql is not installed and there is no apt-get"
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq postgresql >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq postgresql >/dev/null 2>&1; }; } ||
        cannot "apt-get install postgresql failed"
    BIN=$(find_bin)
    [[ -n $BIN && -x $BIN/initdb ]] || cannot "no initdb after installing postgresql"
fi

if ours_alive && psql_ok "select 1" >/dev/null; then
    log "PostgreSQL already up: pid $(head -n1 "$PIDFILE") port $PORT dir $STATE_DIR"
    uri
    exit 0
fi

[[ $(id -u) -eq 0 ]] || cannot "must run as root (initdb and postgres run as user postgres)"
id postgres >/dev/null 2>&1 || cannot "no postgres user (the postgresql package creates it)"
command -v runuser >/dev/null || cannot "no runuser"
if (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    cannot "port $PORT on 127.0.0.1 is taken by another program (set HNET_PG_PORT)"
fi

# --- initdb once, then start ---------------------------------------------------------
mkdir -p "$STATE_DIR"
chown postgres: "$STATE_DIR"
chmod 700 "$STATE_DIR"
if [[ ! -s $DATA/PG_VERSION ]]; then
    rm -rf "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 >"$STATE_DIR/initdb.log" 2>&1 ||
        cannot "initdb failed: $(tail -n1 "$STATE_DIR/initdb.log")"
fi
rm -f "$PIDFILE" # stale (the server is not ours or not alive)
# max_connections: 64 concurrent writers through a multi-worker MLflow server and its pools.
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $STATE_DIR -c max_connections=300 -c fsync=off" \
    >/dev/null 2>&1 || cannot "postgres did not start: $(tail -n1 "$LOG" 2>/dev/null)"
for _ in $(seq 50); do
    psql_ok "select 1" >/dev/null && break
    sleep 0.2
done
psql_ok "select 1" >/dev/null || cannot "postgres does not answer: $(tail -n1 "$LOG")"

# --- role and database for MLflow ----------------------------------------------------------
if [[ $(psql_ok "select 1 from pg_roles where rolname='$DB'") != 1 ]]; then
    psql_ok "create role $DB login createdb password '$PASSWORD'" >/dev/null ||
        cannot "could not create role $DB"
fi
if [[ $(psql_ok "select 1 from pg_database where datname='$DB'") != 1 ]]; then
    psql_ok "create database $DB owner $DB" >/dev/null || cannot "could not create database $DB"
fi
log "PostgreSQL up: pid $(head -n1 "$PIDFILE") port $PORT db $DB dir $STATE_DIR in $((SECONDS - T0))s"
uri
