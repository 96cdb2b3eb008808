"""The run directory: what one job leaves on disk, and how to find finished runs.

    <run>/config.json          resolved config (written first)
    <run>/losses.jsonl         training loss log
    <run>/state/ckpt.pt        checkpoint (resume point; never a declared workflow output)
    <run>/metrics.json         the result: its presence means "finished"
    <run>/failed.json          why the last attempt failed (removed by a later success)
    <run>/samples.npz          generative methods: generated samples per task after the last task
    <run>/mlflow_pending.json  the MLflow mirror still owes this run an upload

Directories named ``*.old-*`` are runs moved aside by ``--restart``; they are never searched.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path

METRICS, CONFIG, FAILED = "metrics.json", "config.json", "failed.json"
SAMPLES = "samples.npz"
MOVED_ASIDE = "*.old-*"


def find_metrics(root: str | Path) -> list[Path]:
    """Every metrics.json under ``root``, sorted, skipping moved-aside runs and ``state`` dirs."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "state" and not fnmatch(d, MOVED_ASIDE))
        if METRICS in filenames:
            found.append(Path(dirpath) / METRICS)
    return sorted(found)
