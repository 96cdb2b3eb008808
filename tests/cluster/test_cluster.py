"""Studies on a real (single-node) SLURM through Snakemake's SLURM executor and the shipped
profile: every cell runs as a SLURM job and logs live to an MLflow tracking server started by
`make mlflow-server` (SQLite) or on PostgreSQL (tests/cluster/conftest.py); a job requeued
mid-study (preemption) resumes from its checkpoint and ends with the same results as an
uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli import hnet_argv
from servers import stop_group, wait_healthy
from smk import study_command

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.cluster


def cluster_profile(tmp_path: Path, partition: str) -> Path:
    """The shipped SLURM profile with this cluster's partition/account, CPU training (no GPU
    here) and fast status polling (the test cluster answers at once)."""
    prof = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    prof["default-resources"].update(slurm_partition=partition, slurm_account="root")
    prof["set-resources"]["train"]["gpu"] = 0
    prof["set-threads"]["train"] = 1
    prof.update(
        {
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 1,
            "jobs": 2,
            "latency-wait": 5,
        }
    )
    out = tmp_path / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(prof))
    return out


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`make mlflow-server` on a free port (127.0.0.1), stopped after the module."""
    tmp = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    venv = Path(sys.executable).parent.parent
    # this session's venv; -o: never (re)install it from here (a checkout without .venv would
    # otherwise get a fresh one, pip install and all, before the server starts)
    cmd = [
        "make",
        "-s",
        "-C",
        str(REPO),
        "-o",
        str(venv / ".installed-stamp"),
        "mlflow-server",
        f"VENV={venv}",
        f"MLFLOW_PORT={port}",
        f"MLFLOW_BACKEND=sqlite:///{tmp}/server.db",
        f"MLFLOW_ARTIFACTS={tmp}/artifacts",
    ]
    # no job runner (its huey consumers are seven more processes importing mlflow; hnet
    # submits no server-side jobs), as in the PostgreSQL server of conftest.py
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    uri = f"http://127.0.0.1:{port}"
    try:  # stopped even when it never answers
        wait_healthy(uri, proc, tmp / "server.log", seconds=60)
        yield uri
    finally:
        stop_group(proc)
        log.close()


def run_study(workdir: Path, profile: Path, config: dict) -> subprocess.Popen:
    cmd = study_command(workdir, config, "--profile", str(profile))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # makes the plugin cancel its SLURM jobs
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"study did not finish in {timeout} s:\n{out[-3000:]}")
    return out


def slurm_jobs(log: str) -> list[str]:
    """SLURM job ids of the jobs Snakemake submitted, from its log."""
    return re.findall(r"submitted with SLURM jobid (\d+)", log)


def squeue_state(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id → (state, comment) from squeue, finished jobs included (MinJobAge)."""
    out = subprocess.run(
        ["squeue", "-t", "all", "-h", "-o", "%i|%T|%k", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        i: (state, comment)
        for i, state, comment in (line.split("|", 2) for line in out.splitlines())
    }


def test_tiny_study_through_slurm_with_live_mlflow(slurm, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    config = {
        "study": "slurm_tiny",
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": ["hnet", "finetune"],
        "seeds": [0, 1],
        "hparams": {"all": {"train.iters": 5}},
        "tracking": {"uri": mlflow_server},
    }
    t0 = time.monotonic()
    log = finish(run_study(tmp_path, cluster_profile(tmp_path, slurm), config))
    wall = time.monotonic() - t0
    assert "steps (100%) done" in log, log[-3000:]
    out = tmp_path / "results/slurm_tiny"
    cells = json.loads((out / "grid.json").read_text())["cells"]
    assert len(cells) == 4
    for c in cells:
        assert json.loads((out / c["run_dir"] / "metrics.json").read_text())["seed"] == c["seed"]
    ids = slurm_jobs(log)
    assert len(ids) == 4, log[-3000:]  # the four training jobs, nothing else went to SLURM
    states = squeue_state(ids)
    assert sorted(states) == sorted(ids)
    assert all(s == "COMPLETED" and k.startswith("rule_train") for s, k in states.values())
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("slurm_tiny")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["seed"] for r in runs} == {"0", "1"}
    assert not (out / "mlflow_sync.json").exists()  # live logging: no batch sync step
    print(f"tiny study through SLURM: {wall:.1f} s wall")


def test_study_through_slurm_to_a_postgresql_backed_server(slurm, pg_mlflow_server, tmp_path):
    """Real `hnet train` jobs on SLURM logging live to an MLflow server whose runs live in
    PostgreSQL (the recipe of docs/cluster.md): one finished, complete run per cell."""
    from mlflow import MlflowClient

    config = {
        "study": "slurm_pg",
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": ["hnet", "finetune"],
        "seeds": [0],
        "hparams": {"all": {"train.iters": 5}},
        "tracking": {"uri": pg_mlflow_server.uri, "required": True},
    }
    log = finish(run_study(tmp_path, cluster_profile(tmp_path, slurm), config))
    assert "steps (100%) done" in log, log[-3000:]
    assert "MLflow mirror of study" not in log  # nothing pending
    out = tmp_path / "results/slurm_pg"
    cells = json.loads((out / "grid.json").read_text())["cells"]
    assert len(cells) == 2 and len(slurm_jobs(log)) == 2, log[-3000:]
    client = MlflowClient(pg_mlflow_server.uri)
    exp = client.get_experiment_by_name("slurm_pg")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == len(cells)
    assert {r.data.tags["hnet.run_dir"] for r in runs} == {
        str((out / c["run_dir"]).resolve()) for c in cells
    }
    assert all(
        r.info.status == "FINISHED" and r.data.tags["hnet.mirror"] == "complete" for r in runs
    )
    assert not list(out.glob("runs/**/mlflow_pending.json"))


def test_requeued_job_resumes_from_checkpoint_with_identical_results(slurm, tmp_path, request):
    iters = 4000  # long enough (≈25 s) to be preempted mid-study
    args = [
        "--benchmark",
        "split_digits",
        "--scenario",
        "cl1",
        "--method",
        "hnet",
        "--seed",
        "0",
        "--device",
        "auto",
        "--size",
        "official",
        "--set",
        f"train.iters={iters}",
        "--threads",
        "1",
        "--quiet",
        "--no-tracking",
    ]
    reference = subprocess.Popen(
        hnet_argv("train", *args, "--out", str(tmp_path / "reference")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = {
        "study": "preempt",
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": ["hnet"],
        "seeds": [0],
        "hparams": {"all": {"train.iters": iters}},
    }
    proc = run_study(tmp_path, cluster_profile(tmp_path, slurm), config)
    request.addfinalizer(lambda: proc.poll() is None and proc.send_signal(signal.SIGINT))
    run_dir = tmp_path / "results/preempt/runs/split_digits/cl1/hnet/official/seed0"
    losses = run_dir / "losses.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until task 2 is being trained
        lines = losses.read_text().splitlines()[:-1] if losses.exists() else []  # whole lines
        if any(json.loads(line)["task"] >= 1 for line in lines):
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the SLURM job never reached task 2")
    queue = subprocess.run(["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True).stdout
    job = next(line.split("|")[0] for line in queue.splitlines() if "rule_train" in line)
    subprocess.run(["scontrol", "requeue", job], check=True)
    log = finish(proc)
    assert reference.wait(timeout=300) == 0
    assert "steps (100%) done" in log, log[-3000:]
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert re.search(r"Restarts=[1-9]", show), show
    resumed = json.loads((run_dir / "metrics.json").read_text())
    ref = json.loads((tmp_path / "reference/metrics.json").read_text())
    assert resumed["resumed"] is True and ref["resumed"] is False
    assert resumed["acc_matrix"] == ref["acc_matrix"]
    for key in ("acc_final", "bwt", "fwt", "forgetting", "task_embeddings"):
        assert resumed[key] == ref[key], key
    train_log = tmp_path / "results/preempt/logs/train/split_digits/cl1/hnet/official/seed0.log"
    assert "resuming" in train_log.read_text()
