"""``hnet status`` on synthetic run directories: every state a cell can be in (done, running,
interrupted with its task and step, failed with its error line and log, not started), the
heartbeat a training process writes, the time-left arithmetic and the --json schema."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from synthetic_runs import heartbeat, metrics_json, write_status_study

from hnet.cli import main
from hnet.errors import JobInterrupted, StudyError
from hnet.job import heartbeat as hb
from hnet.study import eta as eta_mod
from hnet.study.status import (
    DONE,
    FAILED_STATE,
    INTERRUPTED,
    NOT_STARTED,
    RUNNING,
    STATES,
    CellState,
    Expected,
    load_study,
    study_status,
)

NOW = 1_800_000_000.0
ITERS = [2000] * 5


def cell(method: str, seed: int, size: str = "none", benchmark: str = "split_digits") -> dict:
    return {
        "benchmark": benchmark,
        "scenario": "cl1",
        "method": method,
        "size": size,
        "seed": seed,
        "run_dir": f"runs/{benchmark}/cl1/{method}/{size}/seed{seed}",
    }


def write_grid(root: Path, cells: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "grid.json").write_text(json.dumps({"study": "s", "cells": cells}))


def put(root: Path, c: dict, name: str, obj: object) -> Path:
    d = root / c["run_dir"]
    (d / name).parent.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return d


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def study(tmp_path):
    """One cell in every state, and the corner cases between them."""
    root, now = tmp_path / "results/s", time.time()  # the CLI reads the clock too
    cells = {
        "done": cell("finetune", 0),
        "running": cell("finetune", 1),
        "stale": cell("finetune", 2),  # killed elsewhere: heartbeat not updated for long
        "killed_here": cell("finetune", 3),  # fresh record, but its process on this host is gone
        "stopped": cell("finetune", 4),  # SIGTERM: a mid-task checkpoint
        "failed": cell("ewc", 0),
        "failed_then_rerun": cell("ewc", 1),  # an old failure, then a new attempt that runs
        "old_run": cell("ewc", 2),  # from before heartbeats: checkpoint and loss log only
        "not_started": cell("ewc", 3),
        "empty_dir": cell("ewc", 4),
        # trained, but killed before Snakemake recorded the job: Snakemake reruns it
        "unrecorded": cell("ewc", 5),
    }
    write_grid(root, list(cells.values()))
    put(
        root,
        cells["done"],
        "metrics.json",
        metrics_json("split_digits", "cl1", "finetune", "none", 0),
    )
    put(
        root,
        cells["running"],
        "heartbeat.json",
        heartbeat("running", 2, 1200, ITERS, (2, 0), age=3.0, now=now),
    )
    d = put(
        root,
        cells["stale"],
        "heartbeat.json",
        heartbeat("running", 2, 1200, ITERS, (2, 0), age=3600, now=now),
    )
    (d / "state").mkdir()
    (d / "state/ckpt.pt").write_bytes(b"x")
    here = heartbeat(
        "running", 0, 40, ITERS, None, age=2.0, host=socket.gethostname(), pid=dead_pid(), now=now
    )
    put(root, cells["killed_here"], "heartbeat.json", here)
    put(
        root,
        cells["stopped"],
        "heartbeat.json",
        heartbeat("stopped", 3, 700, ITERS, (3, 700), age=5.0, now=now),
    )
    d = put(
        root,
        cells["failed"],
        "heartbeat.json",
        heartbeat("failed", 1, 50, ITERS, (1, 0), age=500, started_ago=900, now=now),
    )
    failure = {
        "error": "TrainingDiverged",
        "message": "Training diverged: the loss is nan at task 2, step 51\nmore",
    }
    put(root, cells["failed"], "failed.json", failure)
    os.utime(d / "failed.json", (now - 400, now - 400))
    log = root / "logs/train/split_digits/cl1/ewc/none/seed0.log"
    log.parent.mkdir(parents=True)
    log.write_text("== attempt\n")
    d = put(root, cells["failed_then_rerun"], "failed.json", failure)
    os.utime(d / "failed.json", (now - 4000, now - 4000))
    put(
        root,
        cells["failed_then_rerun"],
        "heartbeat.json",
        heartbeat("running", 0, 10, ITERS, None, age=1, started_ago=100, now=now),
    )
    d = put(root, cells["old_run"], "losses.jsonl", '{"task": 1, "step": 99, "loss": 0.5}\n')
    (d / "state").mkdir()
    (d / "state/ckpt.pt").write_bytes(b"x")
    put(root, cells["old_run"], "config.json", {"train": {"iters": 200, "iters_per_task": None}})
    (root / cells["empty_dir"]["run_dir"]).mkdir(parents=True)
    d = put(root, cells["unrecorded"], "metrics.json", {"train_seconds": 1.0})
    put(
        root, cells["unrecorded"], "heartbeat.json", heartbeat("done", 5, 0, ITERS, (5, 0), now=now)
    )
    output = f"results/s/{cells['unrecorded']['run_dir']}/metrics.json"
    marker = tmp_path / ".snakemake/incomplete" / base64.urlsafe_b64encode(output.encode()).decode()
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    status = study_status(load_study(root), now=now)
    return root, {name: status.cells[i] for i, name in enumerate(cells)}, status


def test_every_state_is_told_from_the_files(study):
    _, s, status = study
    expect = {
        "done": DONE,
        "running": RUNNING,
        "stale": INTERRUPTED,
        "killed_here": INTERRUPTED,
        "stopped": INTERRUPTED,
        "failed": FAILED_STATE,
        "failed_then_rerun": RUNNING,
        "old_run": INTERRUPTED,
        "not_started": NOT_STARTED,
        "empty_dir": NOT_STARTED,
        "unrecorded": DONE,
    }
    assert {name: c.state for name, c in s.items()} == expect
    assert status.counts() == {DONE: 2, RUNNING: 2, INTERRUPTED: 4, FAILED_STATE: 1, NOT_STARTED: 2}
    assert "from the final checkpoint, without training" in s["unrecorded"].note
    assert s["done"].note == ""
    # positions: the heartbeat's (0-based task, steps taken), the resume point is the checkpoint
    assert (s["running"].task, s["running"].step, s["running"].iters) == (2, 1200, ITERS)
    assert s["running"].fraction == pytest.approx((2 * 2000 + 1200) / 10000)
    assert (s["stale"].task, s["stale"].step, s["stale"].resume) == (2, 1200, (2, 0))
    assert s["stopped"].resume == (3, 700) and s["killed_here"].resume is None
    # a run from before heartbeats: the loss log's last line, its checkpoint file
    assert (s["old_run"].task, s["old_run"].step, s["old_run"].checkpoint) == (1, 100, True)
    assert (
        s["failed"].error
        == "TrainingDiverged: Training diverged: the loss is nan at task 2, step 51"
    )
    assert s["failed"].log.endswith("logs/train/split_digits/cl1/ewc/none/seed0.log")


def test_text_names_positions_resume_points_errors_and_logs(study, capsys):
    root, _, _ = study
    assert main(["status", str(root), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "11 cells: 2 done, 2 running, 4 interrupted, 1 failed, 2 not started" in out
    assert "done, not recorded by Snakemake (yet): its next run rewrites metrics.json" in out
    assert re.search(r"\n  runs/split_digits/cl1/ewc/none/seed5\n", out)
    assert "seed1  task 3 of 5, step 1,200 of 2,000  (pid 4711 on node-elsewhere" in out
    assert "stopped at task 3 of 5, step 1,200 of 2,000; resumes from task 3, step 0" in out
    assert "stopped at task 4 of 5, step 700 of 2,000; resumes from task 4, step 700" in out
    assert "stopped at task 1 of 5, step 40 of 2,000; restarts from the beginning" in out
    assert "stopped at task 2, step 100; resumes from its checkpoint" in out
    assert "TrainingDiverged: Training diverged: the loss is nan at task 2, step 51\n" in out
    assert f"log: {root}/logs/train/split_digits/cl1/ewc/none/seed0.log" in out
    assert "time left: about" in out and "on 2 parallel jobs [--jobs]" in out


def test_json_schema(study, capsys):
    root, _, _ = study
    assert main(["status", str(root), "--json", "--jobs", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "hnet-status/1" and doc["study"] == "s"
    assert set(doc["counts"]) == {*STATES, "total"}
    assert sum(doc["counts"][k] for k in STATES) == doc["counts"]["total"] == len(doc["cells"])
    assert set(doc["eta"]) == {
        "seconds", "work_seconds", "longest_seconds", "jobs", "jobs_from",
        "measured_cells", "estimated_cells", "unknown_cells",
    }  # fmt: skip
    assert doc["eta"]["jobs"] == 3 and doc["eta"]["measured_cells"] == 2
    for g in doc["groups"]:
        assert set(g) == {"benchmark", "scenario", "method", "counts"}
    by_dir = {c["run_dir"]: c for c in doc["cells"]}
    ewc = "runs/split_digits/cl1/ewc/none"
    for c in doc["cells"]:
        assert c["state"] in STATES
        assert {"benchmark", "scenario", "method", "size", "seed", "stage", "run_dir"} <= set(c)
    stale = by_dir["runs/split_digits/cl1/finetune/none/seed2"]
    assert stale["progress"] == {
        "task": 3,
        "tasks": 5,
        "step": 1200,
        "steps": 2000,
        "fraction": 0.52,
    }
    assert stale["resume_from"] == {"task": 3, "step": 0} and stale["checkpoint"] is True
    assert stale["rerun"] == "resume" and by_dir[f"{ewc}/seed5"]["rerun"] == "result only"
    assert by_dir["runs/split_digits/cl1/finetune/none/seed0"]["rerun"] == "nothing"
    assert by_dir["runs/split_digits/cl1/finetune/none/seed3"]["rerun"] == "restart"
    failed = by_dir["runs/split_digits/cl1/ewc/none/seed0"]
    assert failed["error"].startswith("TrainingDiverged") and failed["log"].endswith(".log")
    assert by_dir["runs/split_digits/cl1/finetune/none/seed0"]["job_seconds"] > 0


# -- the heartbeat a training process writes ---------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "state"),
    [(None, hb.DONE), (JobInterrupted("stopped", 15), hb.STOPPED), (ValueError("x"), hb.FAILED)],
)
def test_heartbeat_records_position_and_how_the_process_ended(tmp_path, raised, state):
    with contextlib.suppress(JobInterrupted, ValueError), hb.Beats([tmp_path]) as (beat,):
        beat.begin([10, 10], 1, 4, resumed=True)
        beat.at(1, 7)
        live = hb.read(tmp_path)
        assert live.state == hb.RUNNING and (live.task, live.step) == (1, 4)
        assert live.checkpoint == (1, 4) and live.iters == [10, 10]
        assert hb.alive(live, time.time())  # this very process, on this host
        beat.checkpointed(1, 7)
        if raised is not None:
            raise raised
    rec = hb.read(tmp_path)
    assert rec.state == state and (rec.task, rec.step) == (1, 7) and rec.checkpoint == (1, 7)
    assert rec.pid == os.getpid() and rec.host == socket.gethostname()
    assert not hb.alive(rec, time.time())  # ended: no longer running


def test_a_running_record_dies_with_staleness_or_its_process():
    fresh = hb.Record(hb.RUNNING, "elsewhere", 1, None, NOW - 100, NOW - 5, 0, 0, None, None, None)
    assert hb.alive(fresh, NOW, host="here")
    assert not hb.alive(fresh, NOW + hb.STALE_SECONDS, host="here")  # no beat for too long
    mine = fresh.__class__(**{**vars(fresh), "host": "here", "pid": os.getpid()})
    mine = hb.Record(**{**vars(mine), "boot_ticks": hb.boot_ticks(os.getpid())})
    assert hb.alive(mine, NOW, host="here")
    assert not hb.alive(hb.Record(**{**vars(mine), "pid": dead_pid()}), NOW, host="here")
    if hb.boot_ticks(os.getpid()) is not None:  # Linux: a reused pid is another process
        assert not hb.alive(hb.Record(**{**vars(mine), "boot_ticks": 1}), NOW, host="here")


# -- time left ----------------------------------------------------------------------------------


def state(method: str, seed: int, st: str, **kw) -> CellState:
    c = Expected("split_digits", "cl1", method, "none", seed, f"runs/{method}/seed{seed}")
    return CellState(c, st, **kw)


def done(method: str, seed: int, seconds: float) -> CellState:
    return state(method, seed, DONE, metrics={"process_seconds": seconds, "train_seconds": 1.0})


def test_job_seconds_counts_the_slot_a_finished_cell_held():
    assert eta_mod.job_seconds({"process_seconds": 90.0, "train_seconds": 60.0}) == 90.0
    # a resumed run's process is its last attempt only: training over all attempts + start-up
    resumed = {"process_seconds": 20, "train_seconds": 60, "startup_seconds": 3, "resumed": True}
    assert eta_mod.job_seconds(resumed) == 63.0
    assert eta_mod.job_seconds({}) is None


def test_eta_arithmetic():
    cells = [
        done("ewc", 0, 100.0),
        done("ewc", 1, 300.0),  # ewc costs the median, 200 s
        state("ewc", 2, NOT_STARTED),  # 200
        state("ewc", 3, RUNNING, task=1, step=50, iters=[100, 100]),  # 3/4 done: 50
        # interrupted at 3/4, but its checkpoint is at task 2, step 0: half is trained again
        state("ewc", 4, INTERRUPTED, task=1, step=50, iters=[100, 100], resume=(1, 0)),  # 100
        state("ewc", 5, FAILED_STATE),  # not counted: it does not run again by itself
        state("si", 0, NOT_STARTED),  # no si cell measured; the benchmark's median stands in
    ]
    e = eta_mod.estimate(cells, jobs=2)
    assert e.measured == 2 and e.estimated == 4 and e.unknown == 0
    assert e.remaining == {
        "runs/ewc/seed2": 200.0,
        "runs/ewc/seed3": 50.0,
        "runs/ewc/seed4": 100.0,
        "runs/si/seed0": 200.0,
    }
    assert e.work_seconds == 550.0 and e.longest_seconds == 200.0
    assert e.seconds == 275.0  # work / jobs
    assert eta_mod.estimate(cells, jobs=10).seconds == 200.0  # never below the longest cell
    other = Expected("toy_regression", "cl1", "ewc", "none", 0, "runs/toy")
    alone = eta_mod.estimate([*cells, CellState(other, NOT_STARTED)], jobs=2)
    assert alone.unknown == 1 and "runs/toy" not in alone.remaining  # never across benchmarks


def test_eta_from_a_running_cells_own_pace_when_nothing_finished():
    running = state("si", 0, RUNNING, task=0, step=50, iters=[100, 100], attempt_seconds=30.0)
    waiting = state("si", 1, NOT_STARTED)
    e = eta_mod.estimate([running, waiting], jobs=1)
    # 25 % in 30 s: 120 s a cell; 90 s left of the running one, 120 s of the other
    assert e.remaining == {
        "runs/si/seed0": pytest.approx(90.0),
        "runs/si/seed1": pytest.approx(120.0),
    }
    assert e.seconds == pytest.approx(210.0)


def test_parallel_jobs_from_the_profile(tmp_path):
    cluster, local = tmp_path / "slurm", tmp_path / "local"
    cluster.mkdir()
    local.mkdir()
    (cluster / "config.yaml").write_text(yaml.safe_dump({"executor": "slurm", "jobs": 200}))
    (local / "config.yaml").write_text(yaml.safe_dump({"cores": 8}))
    assert eta_mod.default_jobs(cluster, threads=2)[0] == 200
    assert eta_mod.default_jobs(local, threads=2)[0] == 4
    assert eta_mod.default_jobs(None, threads=10_000)[0] == 1


# -- what hnet status reads ---------------------------------------------------------------------


def test_a_study_config_gives_the_cells_and_a_yte_config_is_refused(tmp_path, monkeypatch):
    config = {
        "study": "c",
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": ["hnet", "ewc"],
        "sizes": ["official", "cr0.5"],
        "seeds": [0, 1],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    study = load_study(path)
    assert study.root == Path("results/c") and len(study.cells) == (2 + 1) * 2
    assert {c.run_dir for c in study.cells} >= {"runs/split_digits/cl1/hnet/cr0.5/seed1"}
    path.write_text(yaml.safe_dump(config | {"__use_yte__": True}))
    with pytest.raises(StudyError, match="__use_yte__"):
        load_study(path)
    with pytest.raises(StudyError, match=r"has no grid\.json"):
        load_study(tmp_path)


def test_synthetic_study_at_scale_counts_what_was_written(tmp_path):
    written = write_status_study(tmp_path / "s", 300)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", str(tmp_path / "s"), "--json", "--jobs", "4"]) == 0
    counts = json.loads(out.getvalue())["counts"]
    assert {k: counts[k] for k in written} == written


def test_watch_refreshes_until_interrupted(study, capsys, monkeypatch):
    root, s, _ = study
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) > 1:
            raise KeyboardInterrupt  # Ctrl-C ends the watch, with status 0
        d = root / s["not_started"].cell.run_dir  # a cell finishes between two refreshes
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"train_seconds": 1.0}))

    monkeypatch.setattr("hnet.cli.status.time.sleep", nap)
    assert main(["status", str(root), "--watch", "3", "--jobs", "1"]) == 0
    frames = capsys.readouterr().out.split("\033[H\033[J")[1:]  # each refresh clears the screen
    assert naps == [3.0, 3.0] and len(frames) == 2
    assert "11 cells: 2 done" in frames[0] and "11 cells: 3 done" in frames[1]
