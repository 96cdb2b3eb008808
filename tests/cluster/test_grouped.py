"""Grouped submission on a real SLURM (study key ``cluster.cells_per_job``): 24 cells in batches of
8 are 3 SLURM jobs; a batch killed mid-way (``scancel``) is retrained by the rerun only in its
unfinished cells (the one that was running resumes from its checkpoint); and every cell ends
with the same metrics as the same study run ungrouped, one job per cell."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from smk import study_command
from test_cluster import cluster_profile, finish, slurm_jobs, squeue_state

pytestmark = pytest.mark.cluster

SEEDS = list(range(8))
METHODS = ["hnet", "finetune", "ewc"]  # 3 × 8 seeds = 24 cells, one batch of 8 per method
ITERS = 100  # a cell is seconds: time to kill its batch while a cell is between tasks
SCORES = ("acc_matrix", "acc_init", "acc_final", "bwt", "forgetting")


def study(name: str, **extra) -> dict:
    return {
        "study": name,
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": METHODS,
        "seeds": SEEDS,
        "hparams": {"all": {"train.iters": ITERS}},
        **extra,
    }


def attempts(log: Path) -> int:
    """How often Snakemake started this cell's job (each start appends one line to its log)."""
    return log.read_text().count("== ") if log.exists() else 0


def test_batches_of_eight_cells_are_three_slurm_jobs_and_a_killed_one_reruns_only_its_rest(
    slurm, tmp_path, request
):
    # the same study ungrouped, one local job per cell (same thread count: same numbers)
    ref_dir = tmp_path / "ungrouped"
    ref_dir.mkdir()
    reference = subprocess.Popen(
        study_command(ref_dir, study("ungrouped"), "--cores", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    request.addfinalizer(lambda: reference.poll() is None and reference.kill())

    work = tmp_path / "grouped"
    work.mkdir()
    profile = cluster_profile(work, slurm)
    text = (profile / "config.yaml").read_text()
    # a killed batch fails the first run (no automatic retry): the second run is the repair
    (profile / "config.yaml").write_text(text.replace("retries: 3", "retries: 0"))
    config = study("grouped", cluster={"cells_per_job": 8})
    cmd = study_command(work, config, "--profile", str(profile))
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    request.addfinalizer(lambda: first.poll() is None and first.send_signal(signal.SIGINT))

    out = work / "results/grouped"
    runs = out / "runs/split_digits/cl1"
    logs = out / "logs/train/split_digits/cl1"
    victim = "final-split_digits-cl1-hnet-official-0"  # the batch of hnet's 8 seeds
    hnet_dirs = [runs / f"hnet/official/seed{s}" for s in SEEDS]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill the hnet batch: 2 cells done, one mid-way
        finished = [d for d in hnet_dirs if (d / "metrics.json").exists()]
        midway = [d for d in hnet_dirs if (d / "state/ckpt.pt").exists() and d not in finished]
        if len(finished) >= 2 and midway:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hnet batch never had two cells done and a third past its first task")
    queue = subprocess.run(
        ["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True, check=True
    ).stdout
    job = next(line.split("|")[0] for line in queue.splitlines() if victim in line)
    subprocess.run(["scancel", job], check=True)
    log1 = finish(first)

    ids = slurm_jobs(log1)
    assert len(ids) == 3, log1[-3000:]  # 24 cells, 3 sbatch calls
    states = squeue_state(ids)
    assert sorted(states) == sorted(ids)
    by_batch = {comment: state for state, comment in states.values()}
    assert len(by_batch) == 3
    assert all(k.startswith("rule_final-split_digits-cl1-") for k in by_batch), states
    assert [s for k, s in by_batch.items() if victim in k] == ["CANCELLED"], states
    assert all(s == "COMPLETED" for k, s in by_batch.items() if victim not in k), states

    done = {d for d in hnet_dirs if (d / "metrics.json").exists()}
    assert 2 <= len(done) < len(SEEDS)  # killed mid-way; its finished cells were kept
    unfinished = [d for d in hnet_dirs if d not in done]
    others = [runs / f"{m}/none/seed{s}" for m in ("finetune", "ewc") for s in SEEDS]
    assert all((d / "metrics.json").exists() for d in others)
    before = {
        d: (attempts(logs / f"{d.relative_to(runs)}.log"), (d / "metrics.json").stat().st_mtime_ns)
        for d in [*done, *others]
    }
    interrupted = [d for d in unfinished if (d / "state/ckpt.pt").exists()]
    assert interrupted  # killed while one cell was training

    log2 = finish(
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    )
    assert "steps (100%) done" in log2, log2[-3000:]
    assert len(slurm_jobs(log2)) == 1, log2[-3000:]  # the killed batch's rest: one job
    for d, (n, mtime) in before.items():  # finished cells: not run again, not rewritten
        assert attempts(logs / f"{d.relative_to(runs)}.log") == n, d
        assert (d / "metrics.json").stat().st_mtime_ns == mtime, d
    for d in unfinished:
        assert json.loads((d / "metrics.json").read_text())["seed"] == int(d.name[4:])
    for d in interrupted:  # killed while training: resumed from its checkpoint
        assert json.loads((d / "metrics.json").read_text())["resumed"] is True, d
    record = json.loads((out / f"batches/{victim}.json").read_text())
    assert len(record["cells"]) == len(SEEDS)  # the record lists the whole batch

    print(
        f"grouped: {len(ids)} SLURM jobs for 24 cells; killed {victim} with {len(done)} cells "
        f"done; the rerun trained its {len(unfinished)} others ({len(interrupted)} resumed) in "
        f"{len(slurm_jobs(log2))} job"
    )
    ref_log, _ = reference.communicate(timeout=2400)
    assert "steps (100%) done" in ref_log, ref_log[-3000:]
    grid = json.loads((out / "grid.json").read_text())["cells"]
    assert len(grid) == 24
    for c in grid:
        got = json.loads((out / c["run_dir"] / "metrics.json").read_text())
        ref = json.loads(
            (ref_dir / "results/ungrouped" / c["run_dir"] / "metrics.json").read_text()
        )
        for key in SCORES:
            assert got[key] == ref[key], (c["run_dir"], key)
    print("grouped and ungrouped scores equal in all 24 cells")
