"""Study configs → grid (hnet.study): axes, sizes only for hnet, include/exclude, and bad
configs failing with a message that names the key — through the real Snakefile too."""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from smk import study_command

from hnet.study import NO_SIZE, Cell, StudyError, expand, overrides, resources, train_args

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "study": "t",
    "benchmarks": ["split_digits", "toy_regression"],
    "scenarios": {"split_digits": ["cl1", "cl3"], "toy_regression": ["cl1"]},
    "methods": ["hnet", "finetune", "ewc"],
    "sizes": ["official", "cr0.5"],
    "seeds": [0, 1],
}


def cfg(**changes):
    c = copy.deepcopy(BASE)
    c.update(changes)
    return c


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


def test_check_cells_catches_bad_hparams_and_unreachable_ratio():
    from hnet.study import check_cells

    bad_key = cfg(
        hparams={"all": {"train.itres": 5}}, benchmarks=["split_digits"], scenarios=["cl1"]
    )
    with pytest.raises(StudyError, match=r"train\.itres.*Did you mean 'iters'"):
        check_cells(bad_key, expand(bad_key))
    bad_ratio = cfg(sizes=["cr0.00001"], benchmarks=["toy_regression"], scenarios=["cl1"])
    with pytest.raises(StudyError, match=r"sizes: 'cr0.00001' for toy_regression"):
        check_cells(bad_ratio, expand(bad_ratio))


# --- the same errors through the real Snakefile, before any job starts ------------------------


def snakemake_dry_run(config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = study_command(tmp_path, config, "-n", "--cores", "1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(methods=["hnet", "finetnue"]), ["methods[1]", "'finetune'"]),
        (lambda c: c.update(seeds=[0, -1]), ["seeds", "-1", "minimum"]),
        (lambda c: c.update(sizes=["official", "pm1000"]), ["sizes[1] = 'pm1000'"]),
        (lambda c: c.pop("methods"), ["'methods' is a required property"]),
        (
            lambda c: c.update(scenarios={"split_digits": ["cl4"], "toy_regression": ["cl1"]}),
            ["cl4"],
        ),
    ],
    ids=["method-typo", "negative-seed", "unknown-preset", "missing-key", "bad-scenario"],
)
def test_snakefile_rejects_malformed_study_before_any_job(tmp_path, mutate, expected):
    config = cfg()
    mutate(config)
    res = snakemake_dry_run(config, tmp_path)
    assert res.returncode != 0
    for text in expected:
        assert text in res.stderr + res.stdout, res.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_snakefile_dry_run_lists_every_cell_without_importing_torch(tmp_path):
    res = snakemake_dry_run(cfg(), tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["train"] == len(expand(cfg()))
    assert counts["check_study"] == counts["mlflow_init"] == counts["aggregate"] == 1
    code = (
        "import sys, runpy; sys.argv = ['snakemake', '-n', '--snakefile', sys.argv[1], "
        "'--directory', sys.argv[2], '--configfile', sys.argv[3], '--cores', '1', '--quiet']\n"
        "from snakemake.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(REPO / "Snakefile"),
            str(tmp_path),
            str(tmp_path / "t.yaml"),  # written by snakemake_dry_run (study "t")
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == "NOTORCH", out.stderr[-2000:]


def test_shipped_study_configs_expand(tmp_path):
    """default, paper and fashion configs validate and expand; paper lists the full grid."""
    counts = {}
    for name in ("default", "paper", "fashion"):
        config = yaml.safe_load((REPO / "workflow" / "config" / f"{name}.yaml").read_text())
        counts[name] = len(expand(config))
    assert counts["default"] == 5 * 9 * 3  # 5 benchmark×scenario, hnet×3 sizes + 6 baselines
    assert counts["paper"] == 7 * 11 * 20  # SM, PM-10 in CL1-3 + PM-100 CL1; hnet×3 + 8; 20 seeds
    res = snakemake_dry_run(
        yaml.safe_load((REPO / "workflow/config/paper.yaml").read_text()), tmp_path
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"train{' ' * 10}{counts['paper']}" in res.stdout.replace("\t", " ") or any(
        line.split() == ["train", str(counts["paper"])] for line in res.stdout.splitlines()
    )


def test_snakemake_lint_is_clean(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Lints for" not in res.stdout + res.stderr, res.stdout[-3000:]
