"""The one way tests start Snakemake on the real Snakefile: write the study config into the
work directory and run this checkout's Snakefile there with the given options."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def study_command(workdir: Path, config: dict, *options: str) -> list[str]:
    """``python -m snakemake --snakefile REPO/Snakefile --directory WORKDIR --configfile
    WORKDIR/<study>.yaml OPTIONS...`` after writing the config file."""
    path = Path(workdir) / f"{config.get('study', 'study')}.yaml"
    path.write_text(yaml.safe_dump(config))
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(path),
        *options,
    ]


# A small study over the offline benchmarks: the base of the study tests (grid and Snakefile).
TINY_STUDY = {
    "study": "t",
    "benchmarks": ["split_digits", "toy_regression"],
    "scenarios": {"split_digits": ["cl1", "cl3"], "toy_regression": ["cl1"]},
    "methods": ["hnet", "finetune", "ewc"],
    "sizes": ["official", "cr0.5"],
    "seeds": [0, 1],
}


def study_config(**changes) -> dict:
    """A copy of :data:`TINY_STUDY` with top-level keys replaced."""
    c = copy.deepcopy(TINY_STUDY)
    c.update(changes)
    return c
