"""Sweeps as grid axes (hnet.study.sweeps, grid.tuning_cells): readable stable paths, the
tuning stage's cells and arguments, and malformed sweeps rejected while the grid is expanded
(the Snakefile's parse) or, for what only a resolved config knows, by check_study."""

from __future__ import annotations

import copy
import shlex

import pytest
from smk import study_config as cfg

from hnet.study.grid import (
    Cell,
    StudyError,
    expand,
    grid_record,
    hnet_reference,
    swept,
    train_args,
    tuning_cells,
)

SWEEPS = {
    "methods": {"hnet": {"hnet.beta": [0.001, 0.01, 0.1]}, "ewc": {"ewc.lambda": [1, 100]}},
    "benchmarks": {"toy_regression": {"hnet": {"train.lr": [0.001, 0.01]}}},
}


def tuned(**changes) -> dict:
    c = cfg(sweeps=copy.deepcopy(SWEEPS), tuning={"seeds": [100, 101], "val_fraction": 0.2})
    c.update(changes)
    return c


def both(c: dict) -> tuple[list[Cell], list[Cell]]:
    cells = expand(c)
    return cells, tuning_cells(c, cells)


def test_unswept_study_keeps_todays_paths_and_has_no_tuning_stage():
    cells, tuning = both(cfg())
    assert tuning == []
    assert Cell("split_digits", "cl1", "hnet", "official", 0).path == (
        "split_digits/cl1/hnet/official/seed0"
    )
    assert all(c.run_dir == f"runs/{c.path}" for c in cells)
    assert "tuning" not in grid_record(cfg(), cells)


def test_tuning_cells_are_groups_times_points_times_tuning_seeds():
    c = tuned()
    cells, tuning = both(c)
    assert cells == expand(cfg())  # the final grid is the unswept one
    # split_digits cl1+cl3: hnet 2 sizes × 3 β + ewc × 2 λ; toy cl1: hnet 2 sizes × 3 β × 2 lr
    # + ewc × 2 λ; finetune is not swept. Times 2 tuning seeds.
    assert len(tuning) == (2 * (2 * 3 + 2) + (2 * 6 + 2)) * 2
    assert {t.seed for t in tuning} == {100, 101}
    paths = {t.run_dir for t in tuning}
    assert "tuning/runs/split_digits/cl3/hnet/cr0.5/beta=0.01/seed101" in paths
    assert "tuning/runs/split_digits/cl1/ewc/none/lambda=100.0/seed100" in paths
    assert "tuning/runs/toy_regression/cl1/hnet/official/beta=0.1,train.lr=0.01/seed100" in paths
    assert not any(t.method == "finetune" for t in tuning)


def test_tuning_and_final_arguments():
    c = tuned(hparams={"all": {"train.iters": 7}, "methods": {"hnet": {"hnet.beta": 5.0}}})
    cells, tuning = both(c)
    t = next(t for t in tuning if t.method == "hnet" and t.benchmark == "split_digits")
    args = shlex.split(train_args(c, t))
    assert "data.val_fraction=0.2" in args and "train.iters=7" in args
    assert "hnet.beta=0.001" in args and "hnet.beta=5.0" not in args  # the sweep wins
    final = next(x for x in cells if x.method == "hnet")
    assert swept(c, final) and not swept(c, next(x for x in cells if x.method == "finetune"))
    args = shlex.split(train_args(c, final, {"hnet.beta": 0.1}))
    assert "hnet.beta=0.1" in args and not any("val_fraction" in a for a in args)


def test_adding_a_value_adds_cells_and_moves_none():
    before = {t.run_dir for t in both(tuned())[1]}
    more = tuned()
    more["sweeps"]["methods"]["ewc"]["ewc.lambda"].append(1000)
    after = {t.run_dir for t in both(more)[1]}
    assert before < after
    assert all("lambda=1000.0" in p for p in after - before)
    assert len(after - before) == 3 * 2  # three benchmark × scenario pairs × two seeds


def test_values_are_canonical_so_paths_are_stable():
    a = tuned()
    b = tuned()
    b["sweeps"]["methods"]["ewc"]["ewc.lambda"] = [1.0, 100.0]  # floats for a float key
    assert {t.run_dir for t in both(a)[1]} == {t.run_dir for t in both(b)[1]}


def test_grid_record_lists_tuning_cells_with_points_in_listed_order():
    c = tuned()
    cells, tuning = both(c)
    rec = grid_record(c, cells, tuning)
    hnet = [
        t
        for t in rec["tuning"]
        if t["method"] == "hnet" and t["benchmark"] == "split_digits" and t["seed"] == 100
    ]
    by_index = {t["point_index"]: t["point"]["hnet.beta"] for t in hnet}
    assert by_index == {0: 0.001, 1: 0.01, 2: 0.1}
    assert all(t["run_dir"].startswith("tuning/runs/") for t in rec["tuning"])


def test_hnet_reference_is_fixed_by_the_study():
    assert hnet_reference(cfg()) == "official"
    assert hnet_reference(cfg(sizes=["cr0.5", "official"])) == "cr0.5"
    assert hnet_reference(cfg(report={"hnet_reference": "cr0.5"})) == "cr0.5"
    with pytest.raises(StudyError, match=r"report.hnet_reference = 'cr1.0'"):
        expand(cfg(report={"hnet_reference": "cr1.0"}))


# -- malformed sweeps: rejected at parse time, each message naming key and method --------------


@pytest.mark.parametrize(
    ("sweeps", "expected"),
    [
        (
            {"methods": {"hnet": {"hnet.betta": [0.1]}}},
            ["sweeps.methods.hnet.hnet.betta", "not a config key of method 'hnet'", "hnet.beta"],
        ),
        (
            {"methods": {"hnet": {"hnet.beta": [0.1, "big"]}}},
            ["sweeps.methods.hnet.hnet.beta[1] = 'big'", "takes a float", "not a str"],
        ),
        (
            {"methods": {"finetune": {"ewc.lambda": [1.0]}}},
            ["sweeps.methods.finetune.ewc.lambda", "method 'finetune' has no 'ewc' section"],
        ),
        (
            {"methods": {"ewc": {"hnet_arch.chunk_emb": [4, 8]}}},
            ["sweeps.methods.ewc.hnet_arch.chunk_emb", "method 'ewc' has no hypernetwork"],
        ),
        (
            {"methods": {"ewc": {"data.classes_per_task": [1, 2]}}},
            ["'data.classes_per_task' is not a config key of method 'ewc' on toy_regression"],
        ),
        (
            {"methods": {"mas": {"mas.lambda": [1.0]}}},
            ["sweeps.methods.mas", "'mas' is not in methods"],
        ),
        (
            {"benchmarks": {"split_mnist": {"ewc": {"ewc.lambda": [1.0]}}}},
            ["sweeps.benchmarks.split_mnist", "not in benchmarks"],
        ),
        (
            {"methods": {"ewc": {"ewc.lambda": [1, 1.0]}}},
            ["sweeps.methods.ewc.ewc.lambda[1] = 1.0 repeats", "[0]"],
        ),
        (
            {"methods": {"ewc": {"data.dir": ["/a", "/b"]}}},
            ["sweeps.methods.ewc.data.dir", "cannot be swept"],
        ),
        (
            {"methods": {"ewc": {"target.activation": ["relu", "a b"]}}},
            ["target.activation[1] = 'a b' cannot be written into a run directory name"],
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "method-lacks-section",
        "arch-without-hypernetwork",
        "key-missing-on-one-benchmark",
        "method-not-in-study",
        "benchmark-not-in-study",
        "duplicate-value",
        "machine-key",
        "unsafe-value",
    ],
)
def test_malformed_sweeps_fail_while_expanding(sweeps, expected):
    c = tuned(sweeps=sweeps)
    with pytest.raises(StudyError) as e:
        both(c)
    for text in expected:
        assert text in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tuning": None}, "sweeps need a tuning stage"),
        ({"sweeps": {}}, "tuning is given but sweeps lists no values"),
        ({"tuning": {"seeds": [1], "metric": "acc_final"}}, "not a validation metric"),
        ({"tuning": {"seeds": [1], "metric": "val_fwt"}}, "'val_fwt' is not applicable in cl1"),
    ],
    ids=[
        "sweeps-without-tuning",
        "tuning-without-sweeps",
        "test-metric-selection",
        "metric-not-applicable",
    ],
)
def test_tuning_stage_rules(change, expected):
    c = tuned(**change)
    if c.get("tuning") is None:
        c.pop("tuning")
    with pytest.raises(StudyError, match=expected):
        both(c)


def test_check_study_catches_what_only_a_resolved_config_knows():
    """A value of the right type that the method refuses (hnet.targets is a word, but only
    'stored' and 'online' exist) fails in check_study, naming the tuning cell."""
    from hnet.study.check import check_cells

    c = tuned(
        benchmarks=["split_digits"],
        scenarios=["cl1"],
        methods=["hnet"],
        sizes=["official"],
        sweeps={"methods": {"hnet": {"hnet.targets": ["stored", "offline"]}}},
    )
    cells, tuning = both(c)  # the type is right: parse time lets it through
    with pytest.raises(StudyError) as e:
        check_cells(c, cells + tuning)
    msg = str(e.value)
    assert "tuning/runs/split_digits/cl1/hnet/official/targets=offline/seed100" in msg
    assert "targets" in msg
