"""Expected cells without results: read a study's grid file and say, per missing cell, why:
``failed`` (with the error from its failed.json), ``running``, ``interrupted``, ``not started``
(the states ``hnet status`` prints, from :func:`hnet.study.status.classify`: one classification
for both), or ``unreadable`` (a metrics.json the report could not read). Used by
``hnet report --expected``."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hnet.errors import HnetError
from hnet.models.sizes import NO_SIZE
from hnet.report.runs import KEYS, sort_groups
from hnet.rundir import FAILED
from hnet.study.catalog import is_rehearsal, is_sized
from hnet.study.status import FAILED_STATE, INTERRUPTED, NOT_STARTED, RUNNING, Expected, classify

MISSING_COLUMNS = [*KEYS, "seed", "status", "run_dir", "error", "exit_code", "time", "message"]
MESSAGE_CHARS = 200
STATUSES = (FAILED_STATE, RUNNING, INTERRUPTED, NOT_STARTED, "unreadable")


@dataclass
class Grid:
    """The expected cells of a study (the workflow's grid file), sizes normalised like runs'."""

    study: str
    path: Path
    cells: list[dict[str, Any]]


def load_grid(path: str | Path) -> Grid:
    """Read a grid file ``{"study": ..., "cells": [{benchmark, scenario, method, size, seed,
    run_dir}, ...]}``; ``run_dir`` is relative to the file's directory. Baselines' size
    (``none`` in the grid, as in the runs table)."""
    path = Path(path)
    try:
        grid = json.loads(path.read_text())
        cells = []
        for c in grid["cells"]:
            method = str(c["method"])
            cells.append(
                {
                    "benchmark": str(c["benchmark"]),
                    "scenario": str(c["scenario"]),
                    "method": method,
                    "size": str(c["size"]) if is_sized(method) or is_rehearsal(method) else NO_SIZE,
                    "seed": int(c["seed"]),
                    "run_dir": str(c["run_dir"]),
                }
            )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HnetError(
            f"--expected {path}: not a readable grid file ({type(e).__name__}: {e}). It must be "
            'JSON {"study": NAME, "cells": [{"benchmark", "scenario", "method", "size", "seed", '
            '"run_dir"}, ...]} as written by the study workflow.'
        ) from e
    return Grid(str(grid.get("study", "")), path, cells)


def _short(text: Any, limit: int = MESSAGE_CHARS) -> str:
    """One line, at most ``limit`` characters (tables stay readable; the full text is in the
    run directory's failed.json)."""
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _position(task: int | None, step: int | None, iters: list[int] | None) -> str:
    if task is None:
        return ""
    of = f" of {len(iters)}" if iters else ""
    return f"task {task + 1}{of}, step {step}"


def cell_status(cell: dict[str, Any], root: Path) -> dict[str, Any]:
    """Why the expected ``cell`` (a grid row, its run directory below ``root``) has no result,
    in ``hnet status``'s words; with the error of failed.json when there is one."""
    info: dict[str, Any] = {"error": "", "exit_code": "", "time": "", "message": ""}
    axes = (cell["benchmark"], cell["scenario"], cell["method"], cell["size"])
    state = classify(
        Expected(*axes, cell["seed"], cell["run_dir"]), root, time.time(), socket.gethostname()
    )
    if state.state == FAILED_STATE:
        try:
            f = json.loads((root / cell["run_dir"] / FAILED).read_text())
            if not isinstance(f, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            return info | {"status": "failed", "message": _short(f"unreadable failed.json: {e}")}
        return info | {
            "status": "failed",
            "error": _short(f.get("error", ""), 80),
            "exit_code": f.get("exit_code", ""),
            "time": _short(f.get("time", ""), 40),
            "message": _short(f.get("message", "")),
        }
    where = _position(state.task, state.step, state.iters)
    if state.state == RUNNING:
        message = f"running on {state.host} (pid {state.pid})" + (f", at {where}" if where else "")
    elif state.state == INTERRUPTED and state.resume is not None:
        message = "stopped; a rerun resumes it at " + _position(*state.resume, state.iters)
    elif state.state == INTERRUPTED and state.checkpoint:
        message = "stopped with a checkpoint: a rerun resumes it"
    elif state.state == INTERRUPTED:
        message = "stopped before its first checkpoint: a rerun starts it again"
    else:
        message = ""
    return info | {"status": state.state, "message": message}


def missing_cells(
    grid: Grid, results_dir: str | Path, runs: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[str]]:
    """Expected cells without a collected run (one row each, in report order), plus notes.

    A cell counts as finished when its run directory is one of the runs read under
    ``results_dir``; a metrics.json that exists but was not read (unreadable, or outside
    RESULTS_DIR) gives status ``unreadable``.
    """
    root = Path(results_dir)
    have = set() if runs is None else {(root / d).resolve() for d in runs["run_dir"]}
    rows, in_grid = [], set()
    for c in grid.cells:
        d = (grid.path.parent / c["run_dir"]).resolve()
        in_grid.add(d)
        if d in have:
            continue
        if (d / "metrics.json").exists():
            why = "metrics.json exists but was not read (unreadable, or outside RESULTS_DIR)"
            blank = {"error": "", "exit_code": "", "time": ""}
            rows.append(c | blank | {"status": "unreadable", "message": why})
        else:
            rows.append(c | cell_status(c, grid.path.parent))
    notes = []
    extra = len(have - in_grid)
    if extra:
        notes.append(
            f"note: {extra} run(s) under {root} are not cells of the grid {grid.path}; they are "
            "included in the tables and figures"
        )
    df = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    return sort_groups(df, extra=("seed", "run_dir")), notes
