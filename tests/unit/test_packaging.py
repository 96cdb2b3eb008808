"""The distribution's name and version: `hnet-cl` on PyPI (`hnet` there is another project),
while the import package and the command stay `hnet`; `hnet --version` reads the installed
distribution's metadata."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

import hnet
from hnet.cli import main
from hnet.job import environment

REPO = Path(__file__).resolve().parents[2]


def test_distribution_name_is_hnet_cl_and_the_command_stays_hnet():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == environment.DISTRIBUTION == "hnet-cl"
    assert project["scripts"] == {"hnet": "hnet.cli:run"}
    assert "version" in project["dynamic"]
    assert environment.DISTRIBUTION in environment.PACKAGES  # recorded in every metrics.json


def test_version_flag_prints_the_installed_distribution_version(monkeypatch, capsys):
    asked = []

    def fake(name):
        asked.append(name)
        return "9.8.7"

    monkeypatch.setattr(metadata, "version", fake)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "hnet 9.8.7 (hnet-cl)"
    assert asked == ["hnet-cl"]


def test_version_flag_from_a_source_tree_that_is_not_installed(monkeypatch, capsys):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    assert out.startswith(f"hnet {hnet.__version__} (source tree") and "hnet-cl" in out
