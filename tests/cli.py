"""The one way tests start ``hnet`` in a fresh process: argv builders and the environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def hnet_argv(command: str, *args: str) -> list[str]:
    """``python -m hnet.cli COMMAND ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "hnet.cli", command, *args]


def train_argv(
    out: Path | str | None,
    *extra: str,
    benchmark: str = "split_digits",
    seed: int = 0,
    sets: dict[str, object] | None = None,
) -> list[str]:
    """``hnet train`` of one small job; ``sets`` become ``--set key=value``; ``out=None``
    leaves ``--out`` to ``extra``."""
    args = ["-b", benchmark, "--seed", str(seed)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    if out is not None:
        args += ["--out", str(out)]
    return hnet_argv("train", *args, *extra)


def env(**changes: str | None) -> dict[str, str]:
    """The current environment with this checkout first on PYTHONPATH; ``None`` unsets."""
    out = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
