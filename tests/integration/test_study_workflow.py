"""Study configs through the real Snakefile: dry runs list every cell without importing torch,
malformed studies fail before any job, the shipped configs build, and `snakemake --lint`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from smk import REPO, study_command
from smk import study_config as cfg

from hnet.study.grid import expand, tuning_cells

TUNE = {"seeds": [100]}


def snakemake_dry_run(config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cmd = study_command(tmp_path, config, "-n", "--cores", "1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_shipped_study_configs_expand(tmp_path):
    """Every shipped config validates and expands to the grid it describes; paper lists the full
    grid, and so does paper_sweep with its tuning stage."""
    counts, tuning = {}, {}
    for path in sorted((REPO / "workflow" / "config").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        counts[path.stem] = len(expand(config))
        tuning[path.stem] = len(tuning_cells(config, expand(config)))
    assert set(counts) == {
        *("default", "paper", "fashion", "tuned_digits", "paper_sweep", "cifar"),
        *("replay", "field", "transfer_fmnist"),
    }
    assert counts["default"] == 5 * 9 * 3  # 5 benchmark×scenario, hnet×3 sizes + 6 baselines
    # SM, PM-10 in CL1-3 + PM-100 CL1; hnet×3 + 8 baselines; + hnet_r and dgr_distill on SM and
    # PM-10 in CL1-3, hnet_tir (official) on SM and PM-10 in CL2-3, hnet_scratch×3 sizes on the
    # three benchmarks in CL1; 20 seeds
    assert counts["paper"] == (7 * 11 + 6 + 6 + 4 + 3 * 3) * 20
    # Split CIFAR-10/100 with ResNet-32 and ZenkeNet, CL1: hnet, hnet_scratch + 8 baselines, 5 seeds
    assert counts["cifar"] == 2 * 10 * 5
    # split_fmnist CL1, CL3: hnet×2 + 7 baselines + hnet_r + dgr_distill, hnet_tir in CL3; 3 seeds
    assert counts["fashion"] == (2 * (2 + 7 + 2) + 1) * 3
    # split_fmnist: 7 methods × 3 seeds in CL2 and CL3, CL1 without hnet_tir and 1 seed
    assert counts["replay"] == 2 * 7 * 3 + 6
    # split and permuted fmnist; CL1: hnet×2, 9 one-size methods (hnet_r, dgr_distill, finetune,
    # joint, ewc, online_ewc, si, mas, lwf), 5 rehearsal methods × 2 buffers, HAT, PackNet, XdG;
    # CL2: hnet×2, hnet_tir, the 9, the rehearsal 10; CL3: as CL2 + iCaRL × 2 buffers; 3 seeds
    assert counts["field"] == 2 * ((2 + 9 + 10 + 3) + (2 + 1 + 9 + 10) + (2 + 1 + 9 + 10 + 2)) * 3
    assert counts["transfer_fmnist"] == 4 * 3  # hnet, hnet_scratch, scratch, finetune; CL1
    assert tuning["default"] == tuning["paper"] == tuning["cifar"] == 0
    assert (counts["tuned_digits"], tuning["tuned_digits"]) == (2 * 3 * 3, 2 * (3 + 4) * 2)
    # SM and PM-10 (6 pairs): hnet 3 sizes × 7 β, ewc and online_ewc 6 λ, si 7 c; PM-100 CL1:
    # hnet 3 × 5 β, ewc 5 λ, online_ewc 6 λ, si 7 c; × 3 tuning seeds. The final grid is the
    # paper's without the replay family: 7 benchmark × scenario pairs × (hnet×3 + 8) × 20 seeds.
    assert counts["paper_sweep"] == 7 * 11 * 20
    assert tuning["paper_sweep"] == (6 * (21 + 6 + 6 + 7) + (15 + 5 + 6 + 7)) * 3
    sweep = snakemake_dry_run(
        yaml.safe_load((REPO / "workflow/config/paper_sweep.yaml").read_text()), tmp_path / "s"
    )
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    stats = {
        line.split()[0]: int(line.split()[1])
        for line in sweep.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert (
        stats["train"] == counts["paper_sweep"] and stats["train_tuning"] == tuning["paper_sweep"]
    )
    assert stats["select"] == 1
    res = snakemake_dry_run(
        yaml.safe_load((REPO / "workflow/config/paper.yaml").read_text()), tmp_path
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"train{' ' * 10}{counts['paper']}" in res.stdout.replace("\t", " ") or any(
        line.split() == ["train", str(counts["paper"])] for line in res.stdout.splitlines()
    )


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
        (
            lambda c: c.update(sweeps={"methods": {"hnet": {"hnet.betta": [0.1]}}}, tuning=TUNE),
            ["sweeps.methods.hnet.hnet.betta", "method 'hnet'", "Did you mean 'hnet.beta'"],
        ),
        (
            lambda c: c.update(sweeps={"methods": {"ewc": {"ewc.lambda": [1, "x"]}}}, tuning=TUNE),
            ["sweeps.methods.ewc.ewc.lambda[1] = 'x'", "method 'ewc' takes a float"],
        ),
        (
            lambda c: c.update(sweeps={"methods": {"finetune": {"ewc.lambda": [1]}}}, tuning=TUNE),
            ["sweeps.methods.finetune.ewc.lambda", "method 'finetune' has no 'ewc' section"],
        ),
        (
            lambda c: c.update(sweeps={"methods": {"ewc": {"ewc.lambda": [1]}}}),
            ["sweeps need a tuning stage"],
        ),
        (
            lambda c: c.update(
                sweeps={"methods": {"ewc": {"ewc.lambda": [1]}}},
                tuning={"seeds": [9], "metric": "acc_final"},
            ),
            ["tuning.metric = 'acc_final' is not a validation metric", "val_acc_final"],
        ),
    ],
    ids=[
        "method-typo",
        "negative-seed",
        "unknown-preset",
        "missing-key",
        "bad-scenario",
        "sweep-unknown-key",
        "sweep-wrong-type",
        "sweep-key-method-lacks",
        "sweep-without-tuning",
        "selection-on-test-metric",
    ],
)
def test_snakefile_rejects_malformed_study_before_any_job(tmp_path, mutate, expected):
    config = cfg()
    mutate(config)
    res = snakemake_dry_run(config, tmp_path)
    assert res.returncode != 0
    for text in expected:
        assert text in res.stderr + res.stdout, res.stderr[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (cfg(seeds=[0, 2**32]), "seeds[1] = 4294967296 is not a seed"),
        (cfg(study="t\n"), "study = 't\\n' is not a study name"),
        (
            cfg(exclude=[{"size": "offical"}]),
            "exclude[0] = {size: offical} matches no cell, so it excludes nothing: size "
            "'offical' is not a size of the grid (its sizes: cr0.5, none, official)",
        ),
        (
            cfg(hparams={"all": {"train.itres": 5}}),
            "hparams.all.train.itres: 'train.itres' is not a config key",
        ),
        ({}, "study.yaml is empty. A study needs study, benchmarks, scenarios, methods, seeds"),
    ],
    ids=["seed-2**32", "name-line-break", "exclude-typo", "hparams-typo", "empty"],
)
def test_dry_run_checks_the_whole_config(tmp_path, config, expected):
    """Faults that used to pass `snakemake -n` and fail in a job (or do nothing) are refused
    while the Snakefile parses, with the value and the fix in the message."""
    res = snakemake_dry_run(config, tmp_path)
    assert res.returncode != 0
    # Snakemake 9 prints a parse error to stdout, not stderr
    assert expected in res.stdout + res.stderr, res.stdout[-2000:] + res.stderr[-2000:]
    assert not (tmp_path / "results").exists()


SWEPT = {"sweeps": {"methods": {"ewc": {"ewc.lambda": [1.0, 10.0]}}}, "tuning": TUNE}


# grouped submission and measured resources are parse-time too (hnet.study.batches, .autores)
CLUSTER = {"cluster": {"cells_per_job": 4}, "resources": {"split_digits": "auto"}}


@pytest.mark.parametrize(
    "extra", [{}, SWEPT, {**SWEPT, **CLUSTER}], ids=["grid", "with-sweeps", "grouped-auto"]
)
def test_snakefile_dry_run_lists_every_cell_without_importing_torch(tmp_path, extra):
    config = cfg(**extra)
    res = snakemake_dry_run(config, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["train"] == len(expand(config))
    assert counts.get("train_tuning", 0) == len(tuning_cells(config, expand(config)))
    assert counts["check_study"] == counts["mlflow_init"] == counts["aggregate"] == 1
    if "cluster" in extra:  # one record per batch, one group job per batch
        groups = {
            line.split("Group job ")[1].split()[0]
            for line in res.stdout.splitlines()
            if "Group job " in line
        }
        assert counts["batch_done"] == len(groups) < counts["train"] + counts["train_tuning"]
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
