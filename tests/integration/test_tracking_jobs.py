"""Real `hnet train` jobs mirroring to MLflow: concurrency, a dead server, a live server."""

import json
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli import env, hnet_argv, train_argv

from hnet.tracking.store import init_store

ENV = env(MLFLOW_TRACKING_URI=None)


def train(out: Path, seed: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = train_argv(out, "--threads", "1", "-q", *extra, seed=seed, sets={"train.iters": 20})
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


def check_runs(uri: str, experiment: str, outs: list[Path]) -> None:
    """One finished, complete run per job, with every matrix entry and the final metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == len(outs)
    assert {r.data.tags["hnet.run_dir"] for r in runs} == {str(o.resolve()) for o in outs}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["hnet.mirror"] == "complete"
        res = json.loads(Path(run.data.tags["hnet.run_dir"], "metrics.json").read_text())
        assert run.data.metrics["acc_final"] == pytest.approx(res["acc_final"])
        for j in range(5):
            hist = client.get_metric_history(run.info.run_id, f"acc_task{j + 1}")
            got = {m.step: m.value for m in hist}
            assert got[0] == pytest.approx(res["acc_init"][j])
            assert [got[i + 1] for i in range(5)] == pytest.approx(
                [row[j] for row in res["acc_matrix"]]
            )
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) > 0


def test_eight_concurrent_jobs_one_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    init_store(uri, "study")
    outs = [tmp_path / f"seed{s}" for s in range(8)]
    with ThreadPoolExecutor(8) as pool:
        done = list(
            pool.map(
                lambda s: train(outs[s], s, "--tracking-uri", uri, "--experiment", "study"),
                range(8),
            )
        )
    for d in done:
        assert d.returncode == 0, d.stderr
        assert "mirror off" not in d.stderr
    check_runs(uri, "study", outs)


def test_dead_tracking_server_does_not_fail_the_job_and_sync_completes(tmp_path):
    out = tmp_path / "run"
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port here
    t0 = time.monotonic()
    done = train(out, 0, "--tracking-uri", dead, "--experiment", "study")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 120
    assert "mirror off" in done.stderr and "hnet sync" in done.stderr
    res = json.loads((out / "metrics.json").read_text())
    assert len(res["acc_matrix"]) == 5
    pending = json.loads((out / "mlflow_pending.json").read_text())
    assert pending["uri"] == dead

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    init_store(uri, "study")
    sync = subprocess.run(
        hnet_argv("sync", str(out), "--tracking-uri", uri),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sync.returncode == 0, sync.stderr
    assert not (out / "mlflow_pending.json").exists()
    check_runs(uri, "study", [out])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_server_dead_then_up_and_eight_concurrent_jobs(tmp_path):
    """Against a real `mlflow server` on 127.0.0.1 (SQLite backend, one worker)."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    # 1. the server is not up yet: the job finishes locally and leaves the mirror pending
    early = tmp_path / "early"
    assert train(early, 100, "--tracking-uri", uri, "--experiment", "study").returncode == 0
    assert (early / "mlflow_pending.json").exists()
    # 2. start the server (store initialised first, so workers do not race on migrations)
    store = f"sqlite:///{tmp_path / 'server.db'}"
    init_store(store, "study")
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    server = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            store,
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
        ],
        env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        time.sleep(2)
        sync = subprocess.run(
            hnet_argv("sync", str(early)),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sync.returncode == 0, sync.stderr
        # 3. eight concurrent jobs through the server
        outs = [tmp_path / f"seed{s}" for s in range(8)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            done = list(
                pool.map(
                    lambda s: train(outs[s], s, "--tracking-uri", uri, "--experiment", "study"),
                    range(8),
                )
            )
        print(f"8 concurrent jobs via mlflow server: {time.monotonic() - t0:.1f} s")
        for d in done:
            assert d.returncode == 0, d.stderr
            assert "mirror off" not in d.stderr
        check_runs(uri, "study", [early, *outs])
    finally:
        server.terminate()
        server.wait(timeout=30)
