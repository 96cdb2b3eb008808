"""A real (tiny) two-stage study through the Snakefile: tuning cells with a validation split, the
selection checkpoint, final cells trained with the selected values, the selected table and the
sensitivity figure; a rerun trains nothing; one more sweep value trains only its tuning cells
and the final cells of the one group whose selection it changes."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
from test_workflow import job_count, snakemake

TUNED = {
    "study": "tuned",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["hnet", "ewc", "finetune"],
    "sizes": ["official"],
    "seeds": [0, 1],
    "hparams": {"all": {"train.iters": 5}},
    # ewc sweeps two learning rates too small to learn in 5 steps; the test adds one that does
    "sweeps": {"methods": {"hnet": {"hnet.beta": [0.001, 0.1]}, "ewc": {"train.lr": [1e-6, 1e-5]}}},
    "tuning": {"seeds": [100], "val_fraction": 0.2},
    "report": {"hnet_reference": "official"},
}
FINAL = "results/tuned/runs/split_digits/cl1"
TUNING = "results/tuned/tuning/runs/split_digits/cl1"


def executed(res, rule: str) -> int:
    """Jobs of ``rule`` that actually ran. Snakemake's "Job stats" table, printed before the
    checkpoint has run, also counts the final cells of swept methods that wait for it; they are
    dropped once the selection turns out unchanged."""
    lines = (res.stdout + res.stderr).splitlines()
    return sum(line.strip() in (f"rule {rule}:", f"localrule {rule}:") for line in lines)


def metrics_files(work: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (work / "results/tuned").rglob("metrics.json")}


def selection(work: Path) -> dict[str, dict]:
    sel = json.loads((work / "results/tuned/tuning/selection.json").read_text())
    return {g["method"]: g["selected"] for g in sel["groups"]}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    work = tmp_path_factory.mktemp("tuned")
    return work, snakemake(work, TUNED)


def test_both_stages_run_in_one_command(study):
    work, res = study
    assert res.returncode == 0, res.stderr[-3000:]
    assert job_count(res, "train_tuning") == executed(res, "train_tuning") == 4  # 4 points
    assert job_count(res, "train") == executed(res, "train") == 6  # 3 methods × 2 seeds
    assert job_count(res, "select") == 1
    for point in ("hnet/official/beta=0.001", "hnet/official/beta=0.1", "ewc/none/train.lr=1e-06"):
        m = json.loads((work / TUNING / point / "seed100/metrics.json").read_text())
        assert m["config"]["data"]["val_fraction"] == 0.2 and "val_acc_final" in m
    chosen = selection(work)
    assert set(chosen) == {"hnet", "ewc"}  # finetune is not swept
    for method, size, section, key in (("hnet", "official", "hnet", "beta"),):
        for seed in (0, 1):
            m = json.loads((work / FINAL / method / size / f"seed{seed}/metrics.json").read_text())
            assert m["config"][section][key] == chosen["hnet"]["hnet.beta"]
            assert m["config"]["data"]["val_fraction"] == 0.0 and "val_acc_final" not in m
    ewc = json.loads((work / FINAL / "ewc/none/seed0/metrics.json").read_text())
    assert ewc["config"]["train"]["lr"] == chosen["ewc"]["train.lr"]


def test_report_has_selected_values_sensitivity_and_holm(study):
    work, _ = study
    out = work / "results/tuned"
    with open(out / "tables/selected.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"hnet", "ewc"} and rows["hnet"]["key"] == "hnet.beta"
    assert rows["ewc"]["key"] == "train.lr"
    assert rows["hnet"]["metric"] == "val_acc_final"
    md = (out / "tables/selected.md").read_text()
    assert "Selection rule:" in md and "test metrics are never read" in md
    png = out / "figures/sensitivity/split_digits__cl1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    paired = (out / "tables/paired_vs_hnet.md").read_text()
    assert "(vs hnet official)" in paired and "p (Holm)" in paired
    with open(out / "tables/runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 6  # the final cells only
    grid = json.loads((out / "grid.json").read_text())
    assert len(grid["cells"]) == 6 and len(grid["tuning"]) == 4


def test_rerun_trains_nothing_and_one_more_value_trains_only_its_cells(study):
    work, _ = study
    again = snakemake(work, TUNED)
    assert again.returncode == 0, again.stderr[-3000:]
    assert job_count(again, "train") == job_count(again, "train_tuning") == 0
    assert executed(again, "train") == executed(again, "train_tuning") == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    before, chosen = metrics_files(work), selection(work)
    more = copy.deepcopy(TUNED)
    more["sweeps"]["methods"]["ewc"]["train.lr"].append(0.01)
    res = snakemake(work, more)
    assert res.returncode == 0, res.stderr[-3000:]
    new_cell = work / TUNING / "ewc/none/train.lr=0.01/seed100/metrics.json"
    assert executed(res, "train_tuning") == 1 and new_cell.exists()
    assert selection(work) == chosen | {"ewc": {"train.lr": 0.01}}  # only ewc's changed
    assert executed(res, "train") == 2  # ewc's two final cells, with the new value
    for path, mtime in before.items():
        retrained = "/tuned/runs/split_digits/cl1/ewc/" in path.as_posix()  # final cells
        assert (path.stat().st_mtime_ns != mtime) == retrained, path
    final = work / FINAL / "ewc/none"
    assert json.loads((final / "seed0/metrics.json").read_text())["config"]["train"]["lr"] == 0.01
    assert len(list(final.glob("seed0.old-*"))) == 1  # the old run was moved aside, not mixed
