"""Study configs → grid (hnet.study): axes, sizes only for hnet, include/exclude, and bad
configs failing with a message that names the key — through the real Snakefile too."""

from __future__ import annotations

import shlex

import pytest
from smk import study_config as cfg

from hnet.study.grid import NO_SIZE, Cell, StudyError, expand, overrides, resources, train_args


def test_grid_multiplies_only_hypernetwork_methods_by_sizes():
    cells = expand(cfg())
    # 3 (benchmark, scenario) pairs × (2 hnet sizes + 2 baselines) × 2 seeds
    assert len(cells) == 3 * 4 * 2
    assert {c.size for c in cells if c.method == "hnet"} == {"official", "cr0.5"}
    assert {c.size for c in cells if c.method != "hnet"} == {NO_SIZE}
    assert not any(c.benchmark == "toy_regression" and c.scenario == "cl3" for c in cells)
    assert cells == sorted(cells) and len(set(cells)) == len(cells)


def test_include_and_exclude():
    c = cfg(
        include=[{"benchmark": "split_digits", "scenario": "cl1", "method": "ewc", "seed": 7}],
        exclude=[{"method": "hnet", "size": "cr0.5"}, {"benchmark": "toy_regression"}],
    )
    cells = expand(c)
    assert Cell("split_digits", "cl1", "ewc", NO_SIZE, 7) in cells
    assert not any(x.size == "cr0.5" or x.benchmark == "toy_regression" for x in cells)
    assert len(cells) == 2 * 3 * 2 + 1


def test_hparam_layers_later_wins_and_become_set_arguments():
    c = cfg(
        hparams={
            "all": {"train.iters": 10, "train.lr": 0.01},
            "benchmarks": {"split_digits": {"train.iters": 20}},
            "methods": {"ewc": {"train.iters": 30, "ewc.lambda": 5.0}},
        }
    )
    ewc = Cell("split_digits", "cl1", "ewc", NO_SIZE, 0)
    hnet = Cell("split_digits", "cl1", "hnet", "cr0.5", 1)
    assert overrides(c, ewc) == {"train.iters": 30, "train.lr": 0.01, "ewc.lambda": 5.0}
    assert overrides(c, hnet)["train.iters"] == 20
    args = shlex.split(train_args(c, hnet))
    assert args[args.index("--size") + 1] == "cr0.5" and "--seed" in args
    assert "train.iters=20" in args and "--size" not in shlex.split(train_args(c, ewc))


def test_resources_default_then_benchmark():
    c = cfg(resources={"default": {"threads": 2, "mem_mb": 999}, "toy_regression": {"gpu": 1}})
    assert resources(c, "split_digits") == {"threads": 2, "mem_mb": 999, "runtime": 60, "gpu": 0}
    assert resources(c, "toy_regression")["gpu"] == 1


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"methods": ["hnet", "ewcc"]}, "methods[1] = 'ewcc'"),
        ({"benchmarks": ["split_digit"]}, "benchmarks[0] = 'split_digit'"),
        ({"sizes": ["official", "huge"]}, "sizes[1] = 'huge'"),
        ({"scenarios": ["cl1", "cl3"]}, "toy_regression"),
        ({"scenarios": {"split_digits": ["cl1"]}}, "scenarios has no entry for benchmark"),
        ({"hparams": {"methods": {"ewk": {"a.b": 1}}}}, "hparams.methods.ewk"),
        ({"exclude": [{"method": "hnett"}]}, "exclude[0].method"),
        (
            {
                "include": [
                    {
                        "benchmark": "split_digits",
                        "scenario": "cl1",
                        "method": "ewc",
                        "size": "cr0.5",
                        "seed": 0,
                    }
                ]
            },
            "include[0].size",
        ),
    ],
)
def test_semantic_errors_name_the_key(change, key):
    with pytest.raises(StudyError, match=None) as e:
        expand(cfg(**change))
    assert key in str(e.value), str(e.value)


# --- the same errors through the real Snakefile, before any job starts ------------------------


def test_check_cells_catches_bad_hparams_and_unreachable_ratio():
    from hnet.study.check import check_cells

    bad_key = cfg(
        hparams={"all": {"train.itres": 5}}, benchmarks=["split_digits"], scenarios=["cl1"]
    )
    with pytest.raises(StudyError, match=r"train\.itres.*Did you mean 'iters'"):
        check_cells(bad_key, expand(bad_key))
    bad_ratio = cfg(sizes=["cr0.00001"], benchmarks=["toy_regression"], scenarios=["cl1"])
    with pytest.raises(StudyError, match=r"sizes: 'cr0.00001' for toy_regression"):
        check_cells(bad_ratio, expand(bad_ratio))
