"""The one end-of-study message about an incomplete MLflow mirror: which store, why, the fix
that fits the failure, and `hnet sync results/<study>`."""

from __future__ import annotations

import json

from hnet.tracking.status import mirror_message, skipped_runs, store_fix


def cells(tmp_path, n, pending=(), reason="", uri=""):
    dirs = []
    for i in range(n):
        d = tmp_path / f"runs/seed{i}"
        d.mkdir(parents=True)
        if i in pending:
            (d / "mlflow_pending.json").write_text(json.dumps({"uri": uri, "reason": reason}))
        dirs.append(d)
    return dirs


def test_nothing_pending_no_message(tmp_path):
    assert mirror_message("s", "results/s", cells(tmp_path, 3), "sqlite:////x/mlflow.db") is None


def test_read_only_database(tmp_path):
    uri = "sqlite:////data/results/s/mlflow.db"
    why = "MLflow create_run failed 3x at …: attempt to write a readonly database"
    msg = mirror_message("s", "results/s", cells(tmp_path, 4, {1, 2}, why, uri), uri)
    assert msg.startswith("hnet: the MLflow mirror of study 's' is incomplete.")
    assert f"2 of 4 runs are not in the tracking store {uri} ({why})" in msg
    assert "`chmod u+w /data/results/s/mlflow.db`" in msg and "`hnet sync results/s`" in msg
    assert "\n" not in msg


def test_damaged_database_and_server_fixes():
    db = "sqlite:////r/mlflow.db"
    assert "mv /r/mlflow.db /r/mlflow.db.broken" in store_fix(db, "file is not a database")
    assert "mv /r/mlflow.db" in store_fix(db, "database disk image is malformed")
    assert "answers again" in store_fix("http://h:5000", "Connection refused")
    assert "repairing" in store_fix("postgresql://u@h/db", "password authentication failed")


def test_unreadable_runs_are_named(tmp_path):
    record = tmp_path / "mlflow_sync.json"
    record.write_text(json.dumps({"skipped": {"results/s/runs/a": "JSONDecodeError: …"}}))
    msg = mirror_message("s", "results/s", cells(tmp_path, 2), "uri", skipped_runs(record))
    assert "results/s/runs/a/metrics.json (JSONDecodeError: …)" in msg
    assert skipped_runs(tmp_path / "missing.json") == {}


def test_connection_failures_are_said_in_a_few_words(tmp_path):
    uri = "http://127.0.0.1:5000"
    why = (
        "MirrorDown: MLflow ensure_experiment failed 3x: API request to http://127.0.0.1:5000/api"
        "/2.0/mlflow/experiments/get-by-name failed with exception HTTPConnectionPool(...): Max "
        "retries exceeded (Caused by NewConnectionError(...: [Errno 111] Connection refused))"
    )
    msg = mirror_message("s", "results/s", cells(tmp_path, 1, {0}, why, uri), uri)
    assert f"(connection refused: nothing answered at {uri})" in msg
    assert "HTTPConnectionPool" not in msg
