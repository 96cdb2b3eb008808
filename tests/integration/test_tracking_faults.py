"""A tracking store that fails during a study: the study still finishes its results and
report, ends with ONE message naming the store and the fix, exits 0 unless the study requires
tracking, and `hnet sync` later completes the mirror with exactly one run per cell. A corrupt
metrics.json makes `hnet sync` name the file and skip it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cli import env, hnet_argv
from smk import study_command

REPO = Path(__file__).resolve().parents[2]
ENV = env(MLFLOW_TRACKING_URI=None, MLFLOW_EXPERIMENT_NAME=None)
STUDY = {
    "study": "brk",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["finetune"],
    "seeds": [0, 1],
    "hparams": {"all": {"train.iters": 5}},
}
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


def snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    profile = str(REPO / "workflow/profiles/local")
    cmd = study_command(workdir, config, "--profile", profile, "--cores", "2", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)


def hnet(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        hnet_argv(*args), cwd=workdir, capture_output=True, text=True, timeout=300, env=ENV
    )


def messages(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if "MLflow mirror of study" in line]


def runs_in(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_damaged_local_store_one_message_then_sync_completes(tmp_path):
    out = tmp_path / "results/brk"
    init = snakemake(tmp_path, STUDY, "results/brk/mlflow.json")  # the store is created...
    assert init.returncode == 0, init.stderr[-3000:]
    db = out / "mlflow.db"
    db.write_bytes(b"this is not an SQLite database" * 100)  # ...and damaged mid-study
    res = snakemake(tmp_path, STUDY)
    assert res.returncode == 0, res.stderr[-3000:]  # tracking is not required
    assert "Traceback" not in res.stderr
    [msg] = messages(res)
    print(msg)
    assert "2 of 2 runs are not in the tracking store" in msg and str(db) in msg
    assert f"mv {db} {db}.broken" in msg and "`hnet sync results/brk`" in msg
    cells = sorted(out.glob("runs/**/metrics.json"))
    assert len(cells) == 2 and (out / "tables/runs.csv").exists()  # results and report
    assert all((c.parent / "mlflow_pending.json").exists() for c in cells)
    assert len(json.loads((out / "mlflow_sync.json").read_text())["pending"]) == 2

    db.rename(db.with_name("mlflow.db.broken"))  # the fix the message names
    first = hnet(tmp_path, "sync", "results/brk")
    assert first.returncode == 0, first.stderr
    again = hnet(tmp_path, "sync", "results/brk")  # idempotent
    assert again.returncode == 0, again.stderr
    runs = runs_in(f"sqlite:///{db}", "brk")
    assert len(runs) == 2 and {r.data.tags["seed"] for r in runs} == {"0", "1"}
    assert all(r.data.tags["hnet.mirror"] == "complete" for r in runs)
    assert not any((c.parent / "mlflow_pending.json").exists() for c in cells)
    assert first.stdout.split() == again.stdout.split()  # the same run ids
    rerun = snakemake(tmp_path, STUDY)
    assert rerun.returncode == 0 and not messages(rerun)


def mlflow_server(port: int, store: Path) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:PORT with an SQLite store (initialised first)."""
    from hnet.tracking.store import init_store

    init_store(f"sqlite:///{store}", "Default")
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    cmd = [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{store}"]
    cmd += ["--artifacts-destination", str(store.parent / "artifacts")]
    proc = subprocess.Popen(
        cmd,
        env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            assert proc.poll() is None, "mlflow server exited"
            time.sleep(0.5)
    raise AssertionError("mlflow server did not answer within 120 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_server_gone_mid_study_one_message_then_sync_when_back(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    config = {**STUDY, "tracking": {"uri": uri}}
    store = tmp_path / "server/mlflow.db"
    store.parent.mkdir()
    server = mlflow_server(port, store)
    try:
        init = snakemake(tmp_path, config, "results/brk/mlflow.json")  # the study starts...
        assert init.returncode == 0, init.stderr[-3000:]
    finally:
        stop(server)  # ...and the server goes away before its jobs log
    res = snakemake(tmp_path, config)
    assert res.returncode == 0, res.stderr[-3000:]
    [msg] = messages(res)
    print(msg)
    assert f"2 of 2 runs are not in the tracking store {uri}" in msg
    assert f"when the tracking server at {uri} answers again" in msg
    assert "`hnet sync results/brk`" in msg
    out = tmp_path / "results/brk"
    assert len(list(out.glob("runs/**/mlflow_pending.json"))) == 2
    assert (out / "tables/runs.csv").exists()

    server = mlflow_server(port, store)  # the server is back
    try:
        for _ in range(2):  # idempotent
            done = hnet(tmp_path, "sync", "results/brk")
            assert done.returncode == 0, done.stderr
        runs = runs_in(uri, "brk")
    finally:
        stop(server)
    assert len(runs) == 2 and {r.data.tags["seed"] for r in runs} == {"0", "1"}
    assert all(r.data.tags["hnet.mirror"] == "complete" for r in runs)
    assert not list(out.glob("runs/**/mlflow_pending.json"))


def test_required_tracking_fails_the_study_before_any_job(tmp_path):
    config = {**STUDY, "tracking": {"uri": DEAD, "required": True}}
    res = snakemake(tmp_path, config)
    assert res.returncode != 0
    assert f"cannot open the MLflow tracking store {DEAD}" in res.stderr
    assert "tracking.required is true" in res.stderr
    assert not list((tmp_path / "results/brk").glob("runs/**/metrics.json"))


def test_required_tracking_incomplete_mirror_exits_nonzero_after_the_report(tmp_path):
    config = {**STUDY, "tracking": {"required": True}}
    init = snakemake(tmp_path, config, "results/brk/mlflow.json")
    assert init.returncode == 0, init.stderr[-3000:]
    out = tmp_path / "results/brk"
    (out / "mlflow.db").write_bytes(b"garbage" * 500)
    res = snakemake(tmp_path, config)
    assert res.returncode != 0
    [msg] = messages(res)
    assert "tracking.required is true" in msg
    assert (out / "tables/runs.csv").exists()
    assert len(list(out.glob("runs/**/metrics.json"))) == 2


def test_sync_names_a_corrupt_metrics_json_and_uploads_the_rest(tmp_path):
    from test_tracking import cfg_with, finished_run_dir

    from hnet.tracking.store import default_uri, init_store

    uri = default_uri(tmp_path)
    init_store(uri, "exp")
    finished_run_dir(tmp_path / "runs/a")
    bad = finished_run_dir(tmp_path / "runs/b", cfg_with(seed=1))
    (bad / "metrics.json").write_text('{"acc_matrix": [[1.0')  # cut off mid-write
    res = hnet(tmp_path, "sync", "runs", "--tracking-uri", uri, "--experiment", "exp")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "runs/b/metrics.json" in res.stderr and "JSONDecodeError" in res.stderr
    assert "runs/a: mirrored as MLflow run" in res.stdout
    assert [r.data.tags["seed"] for r in runs_in(uri, "exp")] == ["0"]
    shutil.rmtree(bad)
