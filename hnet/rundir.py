"""The run directory: what one job leaves on disk, and how to find finished runs.

    <run>/config.json          resolved config (written first)
    <run>/losses.jsonl         training loss log
    <run>/state/ckpt.pt        checkpoint (resume point; never a declared workflow output)
    <run>/state/ckpt.prev.pt   the checkpoint before it (the fallback when ckpt.pt is damaged)
    <run>/metrics.json         the result: its presence means "finished"
    <run>/failed.json          why the last attempt failed (removed by a later success)
    <run>/heartbeat.json       where the training process is and that it lives (hnet status)
    <run>/samples.npz          generative methods: generated samples per task after the last task
    <run>/mlflow_pending.json  the MLflow mirror still owes this run an upload

Directories named ``*.old-*`` are runs moved aside by ``--restart``; they are never searched.
Damaged files a job replaces are moved aside the same way (``metrics.json.old-<time>``).
"""

from __future__ import annotations

import os
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

from hnet.files import aside_path

METRICS, CONFIG, FAILED = "metrics.json", "config.json", "failed.json"
LOSSES = "losses.jsonl"
CKPT, CKPT_PREV = "state/ckpt.pt", "state/ckpt.prev.pt"
SAMPLES = "samples.npz"
HEARTBEAT = "heartbeat.json"
MOVED_ASIDE = "*.old-*"


def move_aside(path: Path, what: str = "the previous run") -> Path:
    """Rename a run directory or file to ``<name>.old-<time>`` (``-2``, ``-3``… if taken):
    nothing computed is ever deleted. Returns the new path."""
    aside = aside_path(path, "old")
    shutil.move(str(path), str(aside))
    print(f"moved {what} to {aside}", file=sys.stderr)
    return aside


def find_metrics(root: str | Path) -> list[Path]:
    """Every metrics.json under ``root``, sorted, skipping moved-aside runs and ``state`` dirs."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "state" and not fnmatch(d, MOVED_ASIDE))
        if METRICS in filenames:
            found.append(Path(dirpath) / METRICS)
    return sorted(found)
