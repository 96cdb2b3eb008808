"""A rerun of a finished study repairs what it can (real Snakemake runs of a tiny split_digits
study): a damaged metrics.json is recomputed from the cell's final checkpoint without a
training step, and a deleted or moved-aside SQLite store is rebuilt from the run directories
with one run per cell; each repair is said on stderr, and a dry run lists it without changing
anything."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli import env
from smk import REPO, study_command

ENV = env(MLFLOW_TRACKING_URI=None, MLFLOW_EXPERIMENT_NAME=None)
STUDY = {
    "study": "fix",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["finetune"],
    "seeds": [0, 1],
    "hparams": {"all": {"train.iters": 5}},
}
OUT = Path("results/fix")
SCORES = ("acc_matrix", "acc_init", "acc_final", "acc_during", "bwt", "forgetting")


def snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = str(REPO / "workflow/profiles/local")
    cmd = study_command(workdir, STUDY, "--profile", profile, "--cores", "2", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)


def jobs_of(res: subprocess.CompletedProcess, rule: str) -> int:
    """How many jobs of ``rule`` a Snakemake run started (it prints 'rule NAME:' for each)."""
    text = res.stdout + res.stderr
    return sum(
        line.strip() in (f"rule {rule}:", f"localrule {rule}:") for line in text.splitlines()
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The study, run once to the end: its directory and each cell's metrics."""
    workdir = tmp_path_factory.mktemp("study")
    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-3000:]
    cells = sorted((workdir / OUT / "runs").rglob("metrics.json"))
    assert len(cells) == 2
    return workdir, {c: json.loads(c.read_text()) for c in cells}


def runs_in(db: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("fix")
    return client.search_runs([exp.experiment_id]) if exp else []


def test_damaged_metrics_is_recomputed_from_the_final_checkpoint(finished):
    workdir, before = finished
    cell, other = sorted(before)
    text = cell.read_text()
    cell.write_text(text[: len(text) // 2])  # a truncated copy, after the study finished
    dry = snakemake(workdir, "-n")  # says so, moves the file aside and lists the cell's job
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "damaged metrics.json" in dry.stderr and str(cell.relative_to(workdir)) in dry.stderr
    assert "recomputes metrics.json from the cell's final checkpoint" in dry.stderr
    assert any(line.split() == ["train", "1"] for line in dry.stdout.splitlines()), dry.stdout

    [aside] = cell.parent.glob("metrics.json.old-*")
    assert aside.read_text() == text[: len(text) // 2]  # the damaged file is kept

    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert jobs_of(res, "train") == 1  # one job, for the damaged cell only
    after = json.loads(cell.read_text())
    for key in SCORES:
        assert after[key] == before[cell][key], key
    # no training step: the training time comes unchanged from the final checkpoint (a
    # retrained cell measures its own), and the job says what it did
    assert after["train_seconds"] == before[cell]["train_seconds"]
    assert after["resumed"] is True
    log = next((workdir / OUT / "logs/train").rglob(f"{cell.parent.name}.log")).read_text()
    assert "recomputing" in log and "from the final checkpoint" in log
    assert json.loads(other.read_text()) == before[other]
    table = (workdir / OUT / "tables/runs.csv").read_text()
    assert len(table.strip().splitlines()) == 1 + 2  # the report has both cells again

    again = snakemake(workdir)
    assert again.returncode == 0 and "damaged" not in again.stderr
    assert jobs_of(again, "train") == 0


def test_deleted_store_is_rebuilt_with_one_run_per_cell(finished):
    workdir, before = finished
    db = workdir / OUT / "mlflow.db"
    first = runs_in(db)
    assert len(first) == 2
    db.rename(db.with_name("mlflow.db.broken"))  # what the damage message tells the user to do

    dry = snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"the MLflow store {db.resolve()}" in dry.stderr and "rebuilds it" in dry.stderr
    assert any(line.split() == ["mlflow_sync", "1"] for line in dry.stdout.splitlines())

    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-3000:]
    [line] = [x for x in res.stderr.splitlines() if "MLflow store" in x and "is gone" in x]
    assert "rebuilds it from the 2 finished run directories" in line
    assert jobs_of(res, "train") == 0  # nothing trained
    assert jobs_of(res, "mlflow_sync") == 1
    runs = runs_in(db)
    assert sorted(r.data.tags["hnet.run_dir"] for r in runs) == sorted(
        str(c.parent.resolve()) for c in before
    )  # one run per cell, no duplicates
    assert all(r.data.tags["hnet.mirror"] == "complete" for r in runs)
    assert {r.data.metrics["acc_final"] for r in runs} == {m["acc_final"] for m in before.values()}

    again = snakemake(workdir)
    assert again.returncode == 0 and "is gone" not in again.stderr
    assert len(runs_in(db)) == 2
