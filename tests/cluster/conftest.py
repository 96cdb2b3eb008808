"""A real PostgreSQL (tests/cluster/postgres-up.sh) and an MLflow tracking server on it, for the
cluster tests that log at cluster scale. Like the ``slurm`` fixture: started for the session if
needed, stopped afterwards if this session started it, skipped with the script's one-line reason
when it cannot start."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import stop_group, wait_healthy

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def postgres():
    """URI of the MLflow database of a running PostgreSQL (postgresql://user:pw@host:port/db)."""
    res = subprocess.run(
        ["bash", str(HERE / "postgres-up.sh")], capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"no PostgreSQL for the cluster tests: {lines[-1]}")
    started = "already up" not in res.stderr
    yield res.stdout.strip().splitlines()[-1]
    if started:
        subprocess.run(["bash", str(HERE / "postgres-down.sh"), "--quiet"], timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sql(admin_uri: str, statement: str) -> None:
    import psycopg2

    con = psycopg2.connect(admin_uri)
    con.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with con.cursor() as cur:
            cur.execute(statement)
    finally:
        con.close()


@dataclass
class Server:
    uri: str  # http://127.0.0.1:PORT
    backend: str  # postgresql://… of this server's own database
    pid: int  # `make mlflow-server` (the server and its workers are its descendants)

    def rss_mb(self) -> float:
        """Resident memory of the server's whole process tree, in MB."""
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total / 2**20


@pytest.fixture(scope="module")
def pg_mlflow_server(postgres, tmp_path_factory):
    """`make mlflow-server MLFLOW_BACKEND=postgresql://…` (the README's recipe) on a fresh
    PostgreSQL database and a free port; stopped and the database dropped afterwards."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary (the dev/cluster extra) is missing")
    from hnet.tracking.store import init_store

    tmp = tmp_path_factory.mktemp("pg-mlflow")
    name = f"mlflow_{secrets.token_hex(4)}"
    _sql(postgres, f"CREATE DATABASE {name}")
    backend = postgres.rsplit("/", 1)[0] + f"/{name}"
    init_store(backend, "Default")  # the schema migrations once, not in racing workers
    port = _free_port()
    venv = Path(sys.executable).parent.parent
    # the README's recipe itself (its workers and connection pools), on this test's database;
    # -o: never (re)install the venv from here
    cmd = [
        "make",
        "-s",
        "-C",
        str(HERE.parent.parent),
        "-o",
        str(venv / ".installed-stamp"),
        "mlflow-server",
        f"VENV={venv}",
        f"MLFLOW_PORT={port}",
        f"MLFLOW_BACKEND={backend}",
        f"MLFLOW_ARTIFACTS={tmp / 'artifacts'}",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(uri, proc, tmp / "server.log", seconds=120)
        yield Server(uri, backend, proc.pid)
    finally:
        stop_group(proc)
        log.close()
        _sql(postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
