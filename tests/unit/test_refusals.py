"""What a command prints or accepts must be what later runs: ``hnet train --print-config``
refuses the values training would refuse, with training's message, and a study config that
would make Snakemake run Python while reading it (``__use_yte__: true``) is refused before
Snakemake reads it (``python -m hnet.study.configfile``, which ``make study`` runs first)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hnet.cli import main
from hnet.errors import ConfigError, StudyError
from hnet.models.target import build_target
from hnet.study import configfile

REPO = Path(__file__).resolve().parents[2]


def test_print_config_refuses_what_training_refuses(capsys):
    """``--set target.kind=zenkenet`` on an MLP benchmark: the job fails when it builds its
    network; --print-config, which used to print the value, now fails with that message."""
    with pytest.raises(ConfigError) as built:  # what the job says when it builds the network
        build_target({"kind": "zenkenet", "hidden": [8], "activation": "relu"}, 64, 2, 5)
    args = ["train", "-b", "split_digits", "-m", "finetune", "--set", "target.kind=zenkenet"]
    assert main([*args, "--print-config"]) != 0
    printed = capsys.readouterr()
    assert printed.out == ""  # no config printed
    assert str(built.value) in printed.err
    assert "choose one of mlp, resnet32, zenke. Did you mean 'zenke'?" in printed.err
    assert main([*args, "--print-config", "--set", "target.kind=zenke"]) == 0  # a real kind
    assert 'kind: "zenke"' in capsys.readouterr().out


YTE_STUDY = {
    "__use_yte__": True,
    "study": "yte",
    # under Snakemake this would run when the file is read, even by `snakemake -n`
    "benchmarks": ["?__import__('pathlib').Path('MARKER').touch() or 'split_digits'"],
    "scenarios": ["cl1"],
    "methods": ["finetune"],
    "seeds": [0],
}


def test_config_that_runs_python_is_refused_before_snakemake(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran"
    study = dict(YTE_STUDY, benchmarks=[YTE_STUDY["benchmarks"][0].replace("MARKER", str(marker))])
    path = tmp_path / "yte.yaml"
    path.write_text(yaml.safe_dump(study))
    assert configfile.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"study config {path}: '__use_yte__: true' turns on Snakemake's YTE templates" in err
    assert "remove the __use_yte__ key" in err and "do not pass this file to snakemake" in err
    assert not marker.exists()
    # the reusable check other commands call (hnet status) refuses the same, also on its own
    with pytest.raises(StudyError, match="__use_yte__"):
        configfile.load_file(path)
    with pytest.raises(StudyError, match="YTE templates"):
        configfile.check_no_code({"__use_yte__": "yes", "study": "x"}, "x.yaml")
    configfile.check_no_code({"study": "x"}, "x.yaml")  # a plain config passes


def test_make_study_checks_the_config_before_snakemake_reads_it():
    """The recipe of `make study` runs the check first; make stops at its failure."""
    res = subprocess.run(
        ["make", "-n", "study", "STUDY_CONFIG=my.yaml", f"STAMP={REPO / 'Makefile'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if "-m hnet.study.configfile my.yaml" in line)
    first_snakemake = next(i for i, line in enumerate(lines) if "snakemake" in line)
    assert check < first_snakemake
