"""Study configs → grid (hnet.study): axes, sizes only for hnet, include/exclude, and bad
configs failing with a message that names the key — through the real Snakefile too."""

from __future__ import annotations

import shlex

import pytest
import yaml
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


def test_hnet_scratch_cells_at_every_hnet_size_in_cl1():
    """The same-size control: one hnet_scratch cell per hnet size and seed, in CL1 (the only
    scenario it supports; elsewhere the study must exclude it, the message says how)."""
    c = cfg(methods=["hnet", "scratch", "hnet_scratch"], scenarios=["cl1"])
    cells = expand(c)
    hnet = {(c.benchmark, c.size, c.seed) for c in cells if c.method == "hnet"}
    assert {(c.benchmark, c.size, c.seed) for c in cells if c.method == "hnet_scratch"} == hnet
    with pytest.raises(StudyError, match=r"exclude: \[\{method: hnet_scratch, scenario: cl3\}\]"):
        expand(cfg(methods=["hnet", "hnet_scratch"]))


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


def test_check_cells_catches_refused_values_and_unreachable_ratio():
    """What needs the method's own checks or the benchmark's shapes is left to check_study."""
    from hnet.study.check import check_cells

    refused = cfg(
        hparams={"methods": {"hnet": {"hnet.targets": "offline"}}},
        benchmarks=["split_digits"],
        scenarios=["cl1"],
    )
    with pytest.raises(StudyError, match=r"hparams of cell split_digits/cl1/hnet.*offline"):
        check_cells(refused, expand(refused))
    bad_ratio = cfg(sizes=["cr0.00001"], benchmarks=["toy_regression"], scenarios=["cl1"])
    with pytest.raises(StudyError, match=r"sizes: 'cr0.00001' for toy_regression"):
        check_cells(bad_ratio, expand(bad_ratio))


# --- the whole config at parse time (hnet.study.validate), no torch, no data ------------------

INC = {"benchmark": "split_digits", "scenario": "cl1", "method": "ewc", "seed": 0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"seeds": [0, 2**32]},
            "seeds[1] = 4294967296 is not a seed: seeds are integers from 0 to 4294967295",
        ),
        ({"tuning": {"seeds": [2**40]}}, "tuning.seeds[0] = 1099511627776 is not a seed"),
        ({"include": [{**INC, "seed": 2**32}]}, "include[0].seed = 4294967296 is not a seed"),
        ({"study": "t\n"}, "study = 't\\n' is not a study name: use letters, digits and _ . -"),
        ({"study": "a/b"}, "study = 'a/b' is not a study name"),
        (
            {"exclude": [{"size": "offical"}]},
            "exclude[0] = {size: offical} matches no cell, so it excludes nothing: size "
            "'offical' is not a size of the grid (its sizes: cr0.5, none, official)",
        ),
        (
            {"exclude": [{"method": "finetune", "size": "cr0.5"}]},
            "exclude[0] = {method: finetune, size: cr0.5} matches no cell, so it excludes "
            "nothing: no cell has all these values together",
        ),
        ({"exclude": [{"seed": 7}]}, "seed 7 is not a seed of the grid (its seeds: 0, 1)"),
        ({"include": [{**INC, "seed": 1}]}, "include[0] adds split_digits/cl1/ewc/none/seed1"),
        (
            {"include": [INC], "exclude": [{"seed": 0}]},
            "include[0] adds split_digits/cl1/ewc/none/seed0, which exclude[0] removes again",
        ),
        (
            {"resources": {"default": {"threads": 100000}}},
            "resources.default.threads = 100000 is beyond what any machine gives one job "
            "(at most 1024 threads)",
        ),
        (
            {"resources": {"split_digits": {"mem_mb": 10**12}}},
            "resources.split_digits.mem_mb = 1000000000000 is beyond",
        ),
        (
            {"resources": {"default": {"runtime": 30 * 365 * 24 * 60}}},
            "resources.default.runtime = 15768000 is beyond what any machine gives one job "
            "(at most 525600 minutes, a year)",
        ),
        ({"resources": {"permuted_digits": {"threads": 2}}}, "resources.permuted_digits"),
        (
            {"hparams": {"all": {"train.itres": 5}}},
            "hparams.all.train.itres: 'train.itres' is not a config key of method 'ewc' on "
            "split_digits. Did you mean 'train.iters'",
        ),
        (
            {"hparams": {"methods": {"ewc": {"ewc.lambda": "x"}}}},
            "hparams.methods.ewc.ewc.lambda = 'x': ewc.lambda of method 'ewc' takes a float",
        ),
        (
            {"hparams": {"all": {"ewc.lambda": 1.0}}},
            "hparams.all.ewc.lambda: method 'finetune' has no 'ewc' section, so it cannot set "
            "ewc.lambda; set it under hparams.methods.ewc",
        ),
        (
            {"hparams": {"methods": {"ewc": {"hnet_arch.chunk_size": 10}}}},
            "method 'ewc' has no hypernetwork",
        ),
        ({"hparams": {"all": {"train.iters_per_task": [1]}}}, "is derived"),
        (
            {"hparams": {"methods": {"mas": {"mas.lambda": 1.0}}}},
            "hparams.methods.mas: no cell of the grid has method 'mas'",
        ),
        (
            {"hparams": {"scenarios": {"cl2": {"train.iters": 5}}}},
            "hparams.scenarios.cl2: no cell of the grid has scenario 'cl2'",
        ),
        ({"sizes": ["official", "cr0"]}, "sizes[1] = 'cr0' asks for a compression ratio of 0"),
    ],
)
def test_whole_config_checks_name_the_value_and_the_fix(change, message):
    with pytest.raises(StudyError) as e:
        expand(cfg(**change))
    assert message in str(e.value), str(e.value)


def test_hparams_of_the_right_type_pass_and_machine_keys_may_be_set():
    c = cfg(
        hparams={
            "all": {"train.iters": 10, "train.lr": 1, "data.download": False},
            "methods": {"hnet": {"hnet.beta": 1, "hnet_arch.chunk_size": 50}},
        }
    )
    assert len(expand(c)) == 24


def test_empty_config_and_schema_errors_are_one_line():
    from hnet.study.validate import check_not_empty, schema_message

    with pytest.raises(StudyError, match=r"study config s.yaml is empty.*default.yaml"):
        check_not_empty({}, ["s.yaml"])

    class Err:
        message = "-1 is less than the minimum of 0"
        absolute_path = ("seeds", 1)

    assert schema_message(Err(), ["s.yaml"]).startswith(
        "study config s.yaml: seeds[1]: -1 is less than the minimum of 0"
    )


def test_yaml_errors_name_file_line_and_reason(tmp_path):
    from hnet.study.configfile import load_file, main

    bad = tmp_path / "s.yaml"
    bad.write_text("study: t\nseeds: !!python/object/apply:os.system [echo]\n")
    with pytest.raises(StudyError) as e:
        load_file(bad)
    assert f"study config {bad}, line 2, column 8: not valid YAML" in str(e.value)
    assert "Python tags (!!python/...) are refused" in str(e.value)
    bad.write_text("study: t\nseeds: [0\n")
    with pytest.raises(StudyError, match=r"line 3, column 1: not valid YAML: expected ','"):
        load_file(bad)
    good = tmp_path / "g.yaml"
    good.write_text(yaml.safe_dump(cfg()))
    assert main([str(good)]) == 0 and main([str(bad)]) == 2


def test_exclude_matching_stays_linear():
    """10 000 cells and 300 exclude patterns of one shape: one lookup per cell and shape."""
    import time

    c = cfg(seeds=list(range(420)), exclude=[{"seed": s, "method": "ewc"} for s in range(300)])
    start = time.perf_counter()
    cells = expand(c)
    assert len(cells) == 3 * 4 * 420 - 3 * 300
    assert time.perf_counter() - start < 5
