"""A real (tiny) Snakemake study end to end: every cell trained, mirrored to MLflow once,
aggregated into tables, figures and the HTML report; a rerun trains nothing; deleted cells and
only they are retrained; a failing cell under --keep-going leaves the others finished and is
listed as failed by the partial report."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from smk import study_command

from hnet.report.layout import FIGURE_KINDS

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "study": "tiny",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["hnet", "finetune", "scratch", "hnet_scratch"],
    "sizes": ["official", "cr0.5"],
    "seeds": [0, 1],
    "hparams": {"all": {"train.iters": 5}},
    # a replay method: its generated-samples figure is one file per method in the HTML report
    "include": [
        {"benchmark": "split_digits", "scenario": "cl1", "method": "hnet_r", "seed": 0},
        # a rehearsal method at two buffer sizes: one line of the accuracy-vs-memory figure
        *(
            {
                "benchmark": "split_digits",
                "scenario": "cl1",
                "method": "replay",
                "seed": 0,
                "size": size,
            }
            for size in ("buf30", "buf90")
        ),
    ],
}
# (hnet and hnet_scratch) × 2 sizes + 2 baselines, × 2 seeds; + the included hnet_r and replay
# cells
N_CELLS = 15


def snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    profile = str(REPO / "workflow/profiles/local")
    cmd = study_command(workdir, config, "--profile", profile, "--cores", "2", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def job_count(res: subprocess.CompletedProcess, rule: str) -> int:
    """Jobs of ``rule`` Snakemake scheduled, from its "Job stats" table (0 if none)."""
    for line in res.stdout.splitlines() + res.stderr.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == rule and parts[1].isdigit():
            return int(parts[1])
    return 0


def mlflow_runs(study_dir: Path, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{study_dir.resolve()}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    first = snakemake(work, TINY)
    return work, first


def cells_of(work: Path) -> list[Path]:
    return sorted((work / "results/tiny/runs").rglob("metrics.json"))


def test_study_trains_every_cell_and_writes_tables_and_figures(study):
    work, first = study
    assert first.returncode == 0, first.stderr[-3000:]
    out = work / "results/tiny"
    grid = json.loads((out / "grid.json").read_text())["cells"]
    assert len(grid) == N_CELLS
    assert job_count(first, "train") == N_CELLS
    for cell in grid:
        m = json.loads((out / cell["run_dir"] / "metrics.json").read_text())
        assert (m["method"], m["seed"]) == (cell["method"], cell["seed"])
        assert m["config"]["train"]["iters"] == 5  # the study's hparams reached the job
        assert m["git_commit"] is not None or m["versions"]
        assert (
            (out / "logs/train" / cell["run_dir"].removeprefix("runs/"))
            .with_suffix(".log")
            .exists()
        )
    with open(out / "tables/runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_CELLS
    for r in rows:  # each hnet cell's transfer against the same-size hnet_scratch cell, and FWT n/a
        assert (r["transfer_vs_hnet_scratch"] != "") == (r["method"] in ("hnet", "hnet_scratch"))
        assert r["transfer_vs_scratch"] != "" and r["fwt"] == "" and r["fwt_na"].startswith("CL1")
    assert f"All {N_CELLS} expected cells finished" in (out / "tables/missing.md").read_text()
    for kind in FIGURE_KINDS:
        assert (out / "figures" / kind).is_dir()
    replay = {r["size"]: r for r in rows if r["method"] == "replay"}
    assert set(replay) == {"buf30", "buf90"}  # the report's groups are the grid's buffer sizes
    assert float(replay["buf90"]["memory_exemplars"]) > float(replay["buf30"]["memory_exemplars"])
    assert "memory (exemplars)" in (out / "tables/summary.md").read_text()
    for kind in ("acc_final", "forgetting", "matrices", "compression", "embeddings", "memory"):
        for ext in ("png", "svg"):
            f = out / "figures" / kind / f"split_digits__cl1.{ext}"
            assert f.stat().st_size > 1000, f
    assert (out / "figures/samples/split_digits__cl1__hnet_r.png").stat().st_size > 1000


def test_every_cell_is_one_mlflow_run(study):
    work, _ = study
    runs = mlflow_runs(work / "results/tiny", "tiny")
    assert len(runs) == N_CELLS
    assert {r.data.tags["hnet.run_key"] for r in runs} == {
        r.data.tags["hnet.run_key"] for r in runs
    }
    assert all("acc_final" in r.data.metrics for r in runs)
    synced = json.loads((work / "results/tiny/mlflow_sync.json").read_text())["runs"]
    assert sorted(synced.values()) == sorted(r.info.run_id for r in runs)


def test_html_report(study):
    work, _ = study
    res = snakemake(work, TINY, "--report", "results/tiny/report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (work / "results/tiny/report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "Final accuracy" in html
    assert "Generated samples" in html and "split_digits__cl1__hnet_r.png" in html
    assert "Published results" in html  # the tables' caption explains the published column


def test_rerun_trains_nothing_and_deleted_cells_exactly_retrain(study):
    work, _ = study
    again = snakemake(work, TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert job_count(again, "train") == 0 and "Nothing to be done" in again.stdout + again.stderr

    cells = cells_of(work)
    before = {p: p.stat().st_mtime_ns for p in cells}
    deleted = [cells[0], cells[3], cells[6]]
    for p in deleted:
        p.unlink()
    rerun = snakemake(work, TINY)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert job_count(rerun, "train") == 3
    for p in cells:
        assert p.exists()
        assert (p.stat().st_mtime_ns == before[p]) == (p not in deleted), p
    assert len(mlflow_runs(work / "results/tiny", "tiny")) == N_CELLS  # re-attached


def test_keep_going_failed_cell_is_listed_and_others_finish(tmp_path):
    config = {
        "study": "flaky",
        "benchmarks": ["split_digits"],
        "scenarios": ["cl1"],
        "methods": ["finetune", "ewc", "scratch"],
        "seeds": [0],
        "hparams": {"all": {"train.iters": 5}, "methods": {"finetune": {"train.lr": 1e30}}},
    }
    res = snakemake(tmp_path, config)  # the local profile sets --keep-going
    assert res.returncode != 0
    out = tmp_path / "results/flaky"
    assert (out / "runs/split_digits/cl1/ewc/none/seed0/metrics.json").exists()
    assert (out / "runs/split_digits/cl1/scratch/none/seed0/metrics.json").exists()
    assert not (out / "runs/split_digits/cl1/finetune/none/seed0/metrics.json").exists()
    with open(out / "tables/missing.csv") as f:
        missing = list(csv.DictReader(f))
    assert len(missing) == 1 and missing[0]["method"] == "finetune"
    assert missing[0]["status"] == "failed" and "diverged" in missing[0]["message"]
    assert "finetune" in (out / "tables/missing.md").read_text()
    assert len(mlflow_runs(out, "flaky")) == 2  # the finished cells were mirrored
