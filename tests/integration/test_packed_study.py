"""A real (tiny) Snakemake study with ``pack_seeds``: seeds of packable methods train in one job
per pack, every seed still has its own run directory, metrics and MLflow run, with the same
accuracies as the unpacked study; deleting one seed's metrics.json reruns its pack's job, which
rebuilds the pack's metrics from the final checkpoints and trains nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_workflow import job_count, mlflow_runs, snakemake

PACKED = {
    "study": "packed",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["hnet", "finetune", "ewc"],  # ewc: not packable, one job per seed
    "sizes": ["official"],
    "seeds": [0, 1, 2],
    "pack_seeds": 2,
    "hparams": {"all": {"train.iters": 5}},
}
UNPACKED = {**PACKED, "study": "unpacked", "pack_seeds": 1}


def runs(work: Path, study: str) -> dict[str, dict]:
    root = work / "results" / study / "runs"
    return {
        str(p.parent.relative_to(root)): json.loads(p.read_text())
        for p in sorted(root.glob("**/metrics.json"))
    }


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    work = tmp_path_factory.mktemp("packed-study")
    packed = snakemake(work, PACKED)
    assert packed.returncode == 0, packed.stderr[-3000:]
    unpacked = snakemake(work, UNPACKED)
    assert unpacked.returncode == 0, unpacked.stderr[-3000:]
    return work, packed


def test_packs_are_one_job_each_and_every_seed_has_its_run(studies):
    work, packed = studies
    # hnet and finetune: seeds 0,1 in a pack, seed 2 alone; ewc: three single jobs
    pack_jobs = sum(
        int(line.split()[1])
        for line in (packed.stdout + packed.stderr).splitlines()
        if line.startswith("train_pack_") and len(line.split()) == 2
    )
    assert pack_jobs == 2 and job_count(packed, "train") == 2 + 3
    got = runs(work, "packed")
    assert len(got) == 9 and {r["seed"] for r in got.values()} == {0, 1, 2}
    logs = work / "results/packed/logs/train/split_digits/cl1/hnet/official"
    assert (logs / "pack0-1.log").exists() and (logs / "seed2.log").exists()
    assert len(mlflow_runs(work / "results/packed", "packed")) == 9


def test_packed_study_agrees_with_the_unpacked_one(studies):
    work, _ = studies
    packed, unpacked = runs(work, "packed"), runs(work, "unpacked")
    assert packed.keys() == unpacked.keys()
    for cell, res in packed.items():
        a, b = res["acc_matrix"], unpacked[cell]["acc_matrix"]
        assert len(a) == len(b)
        for row_a, row_b in zip(a, b, strict=True):
            assert row_a == pytest.approx(row_b, abs=1.0), cell  # float reordering only


def test_deleting_one_seed_reruns_its_pack_without_training(studies):
    work, _ = studies
    root = work / "results/packed/runs/split_digits/cl1/hnet/official"
    losses = {s: (root / f"seed{s}/losses.jsonl").read_bytes() for s in (0, 1, 2)}
    before = {s: json.loads((root / f"seed{s}/metrics.json").read_text()) for s in (0, 1, 2)}
    seed2_mtime = (root / "seed2/metrics.json").stat().st_mtime_ns
    (root / "seed1/metrics.json").unlink()
    rerun = snakemake(work, PACKED)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert job_count(rerun, "train_pack_split_digits_cl1_hnet_official_seeds_0_1") == 1
    assert job_count(rerun, "train") == 0
    for s in (0, 1):  # rebuilt from the final checkpoints: same results, no new training
        after = json.loads((root / f"seed{s}/metrics.json").read_text())
        assert after["acc_matrix"] == before[s]["acc_matrix"]
        assert (root / f"seed{s}/losses.jsonl").read_bytes() == losses[s]
    assert (root / "seed2/metrics.json").stat().st_mtime_ns == seed2_mtime
