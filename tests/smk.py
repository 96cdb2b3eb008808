"""The one way tests start Snakemake on the real Snakefile: write the study config into the
work directory and run this checkout's Snakefile there with the given options."""

from __future__ import annotations

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
