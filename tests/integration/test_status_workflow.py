"""``hnet status`` on a real study killed mid-way: Snakemake's whole process group gets SIGKILL
while cells train; status then says which cells are done, interrupted (and from which task and
step they resume) and not started, and the rerun trains exactly the cells it named, resuming
the interrupted ones where it said."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from cli import env, hnet_argv
from smk import REPO, study_command

STUDY = {
    "study": "killed",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["finetune", "ewc"],
    "seeds": [0, 1, 2],
    # finetune's cells finish quickly; ewc's are ten times longer, so on a fast machine too a
    # kill lands mid-cell after a finished one (a heartbeat is written every 5 s)
    "hparams": {
        "all": {"train.iters": 150, "train.log_every": 10},
        "methods": {"ewc": {"train.iters": 1500}},
    },
    "resources": {"default": {"threads": 1}},
}


def snakemake(work: Path, *extra: str) -> list[str]:
    profile = str(REPO / "workflow/profiles/local")
    return study_command(work, STUDY, "--profile", profile, "--cores", "2", *extra)


def beats(runs: Path) -> dict[str, dict]:
    out = {}
    for f in runs.rglob("heartbeat.json"):
        with contextlib.suppress(ValueError):  # mid-rename
            out[f.parent.relative_to(runs.parent).as_posix()] = json.loads(f.read_text())
    return out


def status(work: Path, *options: str) -> str:
    res = subprocess.run(
        hnet_argv("status", "results/killed", "--jobs", "2", *options),
        cwd=work,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_status_of_a_killed_study_agrees_with_what_the_rerun_trains(tmp_path):
    work = tmp_path
    runs = work / "results/killed/runs"
    proc = subprocess.Popen(
        snakemake(work),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes every job with it
    )
    try:
        deadline = time.monotonic() + 300
        while True:  # a finished cell, and another one past its first task (a checkpoint)
            assert proc.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() < deadline, "no cell got past its first task in time"
            done = list(runs.rglob("metrics.json")) if runs.exists() else []
            later = [
                d
                for d, b in beats(runs).items()
                if b["state"] == "running" and b["task"] >= 1 and b["step"] >= 20
            ]
            if done and later:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = time.time()

    before = json.loads(status(work, "--json"))
    text = status(work)
    print(text)  # pytest -s shows what a user sees
    assert f"{before['counts']['interrupted']} interrupted" in text
    cells = {c["run_dir"]: c for c in before["cells"]}
    counts = before["counts"]
    assert counts["total"] == 6 and counts["running"] == 0 and counts["failed"] == 0
    assert counts["done"] >= 1 and counts["interrupted"] >= 1
    for c in cells.values():
        on_disk = (work / "results/killed" / c["run_dir"] / "metrics.json").exists()
        assert (c["state"] == "done") == on_disk
    # trained, but killed before Snakemake recorded the job: its rerun only rewrites the result
    result_only = {d for d, c in cells.items() if c["state"] == "done" and c["rerun"] != "nothing"}
    interrupted = {d: c for d, c in cells.items() if c["state"] == "interrupted"}
    for d, c in interrupted.items():
        p = c["progress"]
        iters = 1500 if c["method"] == "ewc" else 150
        assert p["tasks"] == 5 and p["steps"] == iters and 1 <= p["task"] <= 5
        # the record still says "running" (nothing could update it): the dead pid decided
        assert beats(runs)[d]["state"] == "running"
        # SIGKILL leaves the last task-end checkpoint: the rerun starts the task it was in
        assert c["resume_from"] is None or c["resume_from"] == {"task": p["task"], "step": 0}
    assert any(c["resume_from"] for c in interrupted.values())
    expected_to_train = {d for d, c in cells.items() if c["state"] != "done"}
    assert before["eta"]["measured_cells"] == counts["done"]
    assert before["eta"]["estimated_cells"] == len(expected_to_train)

    # the rerun (after releasing the lock a kill leaves) trains exactly those cells
    unlock = subprocess.run(
        snakemake(work, "--unlock"), env=env(), capture_output=True, timeout=120
    )
    assert unlock.returncode == 0, unlock.stderr
    rerun = subprocess.run(snakemake(work), env=env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rewritten = {
        f.parent.relative_to(work / "results/killed").as_posix()
        for f in runs.rglob("metrics.json")
        if f.stat().st_mtime > killed_at
    }
    logs = work / "results/killed/logs/train"

    def last_attempt(d: str) -> str:
        return (logs / d.removeprefix("runs/")).with_suffix(".log").read_text().split("== ")[-1]

    for d in result_only:  # rewritten from the final checkpoint, no step trained
        assert re.search(r"recomputing \S+ from the final checkpoint", last_attempt(d))
    assert rewritten - result_only == expected_to_train
    for d, c in interrupted.items():
        log = last_attempt(d)
        resumed = re.search(r"resuming \S+ at task (\d+), step (\d+)", log)
        if c["resume_from"] is None:
            assert resumed is None, log
        else:
            assert resumed, log
            assert (int(resumed[1]), int(resumed[2])) == (c["resume_from"]["task"], 0)
    after = json.loads(status(work, "--json"))
    assert after["counts"]["done"] == 6 and after["eta"]["seconds"] is None

    # the HTML report's front page shows the same state and the compute hours
    report = work / "results/killed/report.html"
    res = subprocess.run(
        snakemake(work, "--report", str(report)), env=env(), capture_output=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    html = report.read_text(errors="replace")
    assert "State of the study" in html and "6 expected cells: 6 done" in html
    assert "CPU core-h" in html
