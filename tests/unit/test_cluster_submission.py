"""Grouped submission (``cluster.cells_per_job``) and ``resources: auto``: which cells share a
cluster job, and what a job asks for from measurements (torch-free, parse-time code)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest
from smk import study_command
from smk import study_config as cfg

from hnet.study.autores import AutoResources, Measurement, ask, cell_cost
from hnet.study.batches import batches, by_cell
from hnet.study.grid import expand, tuning_cells
from hnet.study.packs import packs


def grouped(n: int, **changes) -> tuple:
    c = cfg(cluster={"cells_per_job": n}, **changes)
    cells = expand(c)
    tuning = tuning_cells(c, cells)
    return c, batches(c, cells, tuning, packs(c, cells)), cells, tuning


def test_every_training_job_is_in_one_batch_of_at_most_n_cells_of_one_group():
    _, found, cells, _ = grouped(3, seeds=[0, 1, 2, 3, 4, 5, 6])
    assert sorted(cell for b in found for cell in b.cells) == cells  # each cell exactly once
    assert all(len(b.cells) <= 3 for b in found)
    assert all(len({cell.group for cell in b.cells}) == 1 for b in found)
    # 7 seeds per group: batches of 3, 3, 1 seeds in seed order
    groups = Counter(cell.group for cell in cells)
    assert len(found) == 3 * len(groups)
    first = [b for b in found if b.cells[0].group == cells[0].group]
    assert [[x.seed for x in b.cells] for b in first] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len({b.name for b in found}) == len(found)


def test_one_cell_per_job_and_no_key_mean_no_batches():
    for study in (cfg(), cfg(cluster={"cells_per_job": 1})):
        cells = expand(study)
        assert batches(study, cells, [], []) == []


def test_batches_keep_their_members_when_the_study_gains_methods():
    _, before, _, _ = grouped(2, methods=["hnet", "ewc"])
    _, after, _, _ = grouped(2, methods=["hnet", "finetune", "ewc"])
    assert {b.name: b.cells for b in before}.items() <= {b.name: b.cells for b in after}.items()


def test_a_pack_of_seeds_is_one_unit_counted_as_its_seeds():
    c, found, cells, _ = grouped(4, seeds=[0, 1, 2, 3, 4], pack_seeds=2)
    pk = packs(c, cells)
    assert pk  # hnet and finetune pack
    where = by_cell(found)
    for p in pk:
        assert len({where[x] for x in p}) == 1  # never split across batches
    assert all(len(b.cells) <= 4 for b in found)
    hnet = [b for b in found if b.cells[0].method == "hnet" and b.cells[0].size == "official"]
    hnet = [b for b in hnet if b.cells[0].benchmark == "split_digits"]
    hnet = [b for b in hnet if b.cells[0].scenario == "cl1"]
    # packs (0,1) (2,3) and seed 4 alone: 2 + 2 cells, then 1
    assert [len(b.units) for b in hnet] == [2, 1]


def test_a_pack_larger_than_a_batch_is_a_batch_alone():
    _, found, _, _ = grouped(2, seeds=[0, 1, 2], pack_seeds=3)
    packed = [b for b in found if b.cells[0].method == "hnet"]
    assert packed and all(len(b.units) == 1 and len(b.cells) == 3 for b in packed)


def test_tuning_cells_are_batched_apart_from_final_cells():
    sweeps = {"methods": {"ewc": {"ewc.lambda": [1.0, 10.0, 100.0]}}}
    _, found, cells, tuning = grouped(4, sweeps=sweeps, tuning={"seeds": [7, 8]})
    assert tuning
    assert sorted(x for b in found for x in b.cells) == sorted(cells + tuning)
    for b in found:
        assert len({bool(x.point) for x in b.cells}) == 1
    ewc_tuning = [b for b in found if b.cells[0].point and b.cells[0].scenario == "cl1"]
    assert all(len(b.cells) <= 4 for b in ewc_tuning)


def test_auto_asks_safety_times_the_measurement_with_floors():
    c = cfg(cluster={"auto": {"safety": 2.0, "min_runtime": 3, "min_mem_mb": 500}})
    assert ask(Measurement(600.0, 1234.0, "x"), c) == {"runtime": 20, "mem_mb": 2500}
    assert ask(Measurement(10.0, 100.0, "x"), c) == {"runtime": 3, "mem_mb": 500}
    d = cfg()  # defaults: 1.5, 5 minutes, 1000 MB
    assert ask(Measurement(3600.0, 2000.0, "x"), d) == {"runtime": 90, "mem_mb": 3000}
    # resumed: its process time is one attempt; training time + start-up count too
    assert cell_cost(
        {"process_seconds": 5, "train_seconds": 40, "startup_seconds": 3, "peak_rss_mb": 300}
    ) == (43.0, 300.0)


def test_auto_resources_come_from_finished_cells_then_the_bench_file_then_fixed(tmp_path):
    c = cfg(
        resources={"default": {"runtime": 30}, "split_digits": "auto"},
        cluster={"auto": {"safety": 1.5, "min_runtime": 1, "min_mem_mb": 100}},
    )
    cells = expand(c)
    out = tmp_path / "results/t"
    auto = AutoResources(c, out, cells)
    # nothing measured: the fixed numbers below auto (default's runtime, built-in memory)
    assert auto.value("split_digits", "hnet", "runtime") == 30
    assert auto.value("split_digits", "hnet", "mem_mb") == 2000
    assert "no measurement yet" in "\n".join(auto.lines())
    assert auto.value("toy_regression", "hnet", "runtime") == 30  # not auto
    (out).mkdir(parents=True)
    (out / "bench.json").write_text(
        json.dumps({"pairs": {"split_digits/hnet": {"seconds": 120.0, "peak_rss_mb": 400.0}}})
    )
    auto = AutoResources(c, out, cells)
    assert auto.value("split_digits", "hnet", "runtime") == 3  # ceil(1.5 · 2 min)
    assert auto.value("split_digits", "hnet", "mem_mb") == 600
    assert auto.value("split_digits", "ewc", "runtime") == 30  # no entry: fixed
    hnet = [x for x in cells if x.benchmark == "split_digits" and x.method == "hnet"]
    for x, seconds in zip(hnet[:2], (200.0, 400.0), strict=True):
        d = out / x.run_dir
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(
            json.dumps(
                {"process_seconds": seconds, "train_seconds": seconds - 10, "peak_rss_mb": 900.0}
            )
        )
    auto = AutoResources(c, out, cells)  # finished cells win over the bench file: the longest
    assert auto.value("split_digits", "hnet", "runtime") == 10  # ceil(1.5 · 400 / 60)
    assert auto.value("split_digits", "hnet", "mem_mb") == 1400  # 1.5 · 900, up to 100 MB
    assert "2 finished cells" in "\n".join(auto.lines())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster": {"cells_per_job": 0}}, "cluster.cells_per_job"),
        ({"resources": {"split_digits": {"runtime": "quick"}}}, "resources.split_digits.runtime"),
        ({"cluster": {"auto": {"safety": 0.5}}}, "cluster.auto.safety"),
    ],
)
def test_bad_cluster_keys_are_refused_by_the_schema(tmp_path, change, message):
    res = subprocess.run(
        study_command(tmp_path, cfg(**change), "-n", "--cores", "1"),
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and message in res.stdout + res.stderr, res.stderr[-2000:]


def test_a_bench_estimate_is_start_up_steps_and_every_score():
    from hnet.job.bench import estimate_job

    cfg = {"train": {"iters": 10, "iters_per_task": None}}
    measured = {
        "n_tasks": 3,
        "step_seconds": {0: 1.0, 2: 3.0},  # task 2's steps: 3 s; task 1's: halfway, 2 s
        "startup_seconds": 5.0,
        "eval_seconds": 0.5,
        "peak_rss_mb": 700.0,
    }
    e = estimate_job(cfg, measured)
    assert e["train_seconds"] == 10 * (1.0 + 2.0 + 3.0)
    assert e["eval_seconds"] == (3 + 1) * 3 * 0.5  # b, then after each task: 4 rows of 3
    assert e["seconds"] == 5.0 + 60.0 + 6.0 and e["peak_rss_mb"] == 700.0
    cfg["train"]["iters_per_task"] = [1, 2, 3]  # epochs: each task its own steps
    assert estimate_job(cfg, measured)["train_seconds"] == 1 * 1.0 + 2 * 2.0 + 3 * 3.0
