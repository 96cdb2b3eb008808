"""buffer.size in studies: the rehearsal methods' own size axis (``buffer_sizes``, cells
``buf<N>``), in hparams (for the rehearsal methods only), never tuned; the report reads the same
``buf<N>`` back from each run's config, and a Snakemake dry run plans exactly these jobs."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from smk import study_command
from smk import study_config as cfg

from hnet.report.missing import load_grid
from hnet.report.runs import group_size
from hnet.study.check import check_cells
from hnet.study.grid import (
    NO_SIZE,
    Cell,
    StudyError,
    expand,
    grid_record,
    overrides,
    train_args,
    tuning_cells,
)

METHODS = ["hnet", "ewc", "replay"]


def sizes_of(cells, method):
    return {(c.benchmark, c.size) for c in cells if c.method == method}


def test_buffer_sizes_multiply_only_rehearsal_methods():
    base = expand(cfg(methods=METHODS))
    swept = expand(cfg(methods=METHODS, buffer_sizes=[30, 300]))
    for method in ("hnet", "ewc"):  # untouched: same cells
        assert [c for c in swept if c.method == method] == [c for c in base if c.method == method]
    replay = [c for c in swept if c.method == "replay"]
    assert {c.size for c in replay} == {"buf30", "buf300"}
    assert len(replay) == 2 * len([c for c in base if c.method == "replay"])
    cell = next(c for c in replay if c.size == "buf30")
    assert overrides(cfg(methods=METHODS, buffer_sizes=[30, 300]), cell)["buffer.size"] == 30
    args = shlex.split(train_args(cfg(methods=METHODS, buffer_sizes=[30, 300]), cell))
    assert "--size" not in args and "buffer.size=30" in args


def test_without_buffer_sizes_the_cell_names_the_buffer_it_will_have():
    """Default per benchmark (tuned/buffer.yaml for toy_regression), or hparams'."""
    cells = expand(cfg(methods=METHODS))
    assert sizes_of(cells, "replay") == {("split_digits", "buf1000"), ("toy_regression", "buf60")}
    assert {c.size for c in cells if c.method == "ewc"} == {NO_SIZE}
    c = cfg(methods=METHODS, hparams={"all": {"buffer.size": 50, "train.iters": 5}})
    cells = expand(c)
    assert {c.size for c in cells if c.method == "replay"} == {"buf50"}
    ewc = next(x for x in cells if x.method == "ewc")
    assert overrides(c, ewc) == {"train.iters": 5}  # buffer keys skip the other methods


def test_the_cells_resolve_to_their_buffer():
    """check_study resolves every cell as its job will: the buffer of the path is the config's,
    and a size larger than a benchmark's tasks hold fails there, before any job."""
    from hnet import config as job_config

    c = cfg(methods=METHODS, buffer_sizes=[30, 60], hparams={"all": {"train.iters": 2}})
    cells = expand(c)
    check_cells(c, cells)
    for cell in (x for x in cells if x.method == "replay"):
        conf = job_config.resolve(cell.benchmark, "replay", overrides=overrides(c, cell))
        assert f"buf{conf['buffer']['size']}" == cell.size
    too_big = cfg(methods=METHODS, buffer_sizes=[300])
    with pytest.raises(StudyError, match=r"toy_regression/cl1/replay/buf300.*buffer\.size ≤ 60"):
        check_cells(too_big, expand(too_big))


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"methods": ["hnet", "ewc"], "buffer_sizes": [10]},
            "buffer_sizes is given, but no method of the study stores training samples",
        ),
        (
            {"methods": ["hnet", "ewc"], "hparams": {"all": {"buffer.size": 10}}},
            "hparams.all.buffer.size: no rehearsal method",
        ),
        (
            {"methods": METHODS, "hparams": {"methods": {"ewc": {"buffer.size": 10}}}},
            "method 'ewc' stores no training samples",
        ),
        (
            {"methods": METHODS, "buffer_sizes": [10], "hparams": {"all": {"buffer.size": 5}}},
            "give the sizes in one place",
        ),
        (
            {
                "methods": METHODS,
                "sweeps": {"methods": {"replay": {"buffer.size": [10, 20]}}},
                "tuning": {"seeds": [9]},
            },
            "buffer.size is not tuned",
        ),
        (
            {"methods": METHODS, "hparams": {"methods": {"replay": {"buffer.size": "many"}}}},
            "buffer.size of method 'replay' takes a int",
        ),
    ],
)
def test_misplaced_buffer_sizes_name_the_fix(change, message):
    with pytest.raises(StudyError, match=re.escape(message)):
        c = cfg(**change)
        tuning_cells(c, expand(c))  # sweeps are checked with the tuning stage


def test_include_and_exclude_by_buffer():
    c = cfg(
        methods=METHODS,
        buffer_sizes=[30],
        include=[
            {
                "benchmark": "split_digits",
                "scenario": "cl3",
                "method": "replay",
                "size": "buf90",
                "seed": 0,
            }
        ],
        exclude=[{"method": "replay", "benchmark": "toy_regression"}],
    )
    cells = expand(c)
    assert Cell("split_digits", "cl3", "replay", "buf90", 0) in cells
    assert sizes_of(cells, "replay") == {("split_digits", "buf30"), ("split_digits", "buf90")}
    bad = {**c, "include": [{**c["include"][0], "size": "official"}]}
    with pytest.raises(StudyError, match=r"include\[0\]\.size = 'official'.*buf<N>"):
        expand(bad)


def test_the_report_groups_runs_by_the_same_buffer_label(tmp_path):
    """runs.csv and the grid agree on a rehearsal run's size, so missing cells are found."""
    run = {"method": "replay", "size": "official", "config": {"buffer": {"size": 300}}}
    assert group_size(run) == "buf300"
    assert group_size({"method": "replay", "config": {"replay": {}}}) == NO_SIZE  # older runs
    assert group_size({"method": "ewc", "size": "official", "config": {}}) == NO_SIZE
    c = cfg(methods=METHODS, buffer_sizes=[300])
    import json

    (tmp_path / "grid.json").write_text(json.dumps(grid_record(c, expand(c))))
    grid = load_grid(tmp_path / "grid.json")
    assert {x["size"] for x in grid.cells if x["method"] == "replay"} == {"buf300"}


def test_a_snakemake_dry_run_plans_one_job_per_buffer_size(tmp_path):
    """The real Snakefile: the schema takes buffer_sizes, and the plan has a training job per
    rehearsal cell at each size (and none more for the other methods)."""
    c = cfg(methods=["ewc", "replay"], benchmarks=["split_digits"], scenarios=["cl1"], seeds=[0],
            buffer_sizes=[30, 300])  # fmt: skip
    out = subprocess.run(
        study_command(tmp_path, c, "-n", "--cores", "1"), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    for size in ("buf30", "buf300"):
        assert f"runs/split_digits/cl1/replay/{size}/seed0/metrics.json" in text
    assert "runs/split_digits/cl1/ewc/none/seed0/metrics.json" in text
    assert not re.search(r"ewc/buf", text)
