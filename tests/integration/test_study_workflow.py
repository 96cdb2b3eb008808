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

from hnet.study.grid import expand


def snakemake_dry_run(config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = study_command(tmp_path, config, "-n", "--cores", "1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_shipped_study_configs_expand(tmp_path):
    """default, paper and fashion configs validate and expand; paper lists the full grid."""
    counts = {}
    for name in ("default", "paper", "fashion"):
        config = yaml.safe_load((REPO / "workflow" / "config" / f"{name}.yaml").read_text())
        counts[name] = len(expand(config))
    assert counts["default"] == 5 * 9 * 3  # 5 benchmark×scenario, hnet×3 sizes + 6 baselines
    # SM, PM-10 in CL1-3 + PM-100 CL1; hnet×3 + 8 baselines; + hnet_r and dgr_distill on SM and
    # PM-10 in CL1-3, hnet_tir (official) on SM and PM-10 in CL2-3; 20 seeds
    assert counts["paper"] == (7 * 11 + 6 + 6 + 4) * 20
    # split_fmnist CL1, CL3: hnet×2 + 7 baselines + hnet_r + dgr_distill, hnet_tir in CL3; 3 seeds
    assert counts["fashion"] == (2 * (2 + 7 + 2) + 1) * 3
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
