"""Where a study stands: every expected cell classified from its run directory's files alone.

``hnet status`` and the report's front page read the same classification, so they never
disagree. It reads files only (the study's grid, each run directory's listing, its small JSON
records, the tail of a loss log): no torch, no checkpoint loads, no Snakemake and none of its
locks, so it is safe beside a running study and fast on thousands of cells.

A cell is, checked in this order:

- ``done``: its ``metrics.json`` exists (the workflow's only declared output). A job that
  ended before Snakemake recorded it (killed in between, or Snakemake has not polled it yet)
  is still marked incomplete in ``.snakemake/incomplete/``; Snakemake's next run runs it again,
  which rewrites metrics.json from the final checkpoint without training: such a cell is done,
  with a note;
- ``running``: its heartbeat record (:mod:`hnet.job.heartbeat`) is ``running``, fresh and, on
  this host, its process alive;
- ``failed``: a ``failed.json`` not older than the last attempt (the first line of the error
  and the log path are shown);
- ``interrupted``: anything else a job left (a checkpoint, a heartbeat, a loss log or a config):
  a rerun resumes from the checkpoint the heartbeat names (from the start without one);
- ``not started``: no run directory, or an empty one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hnet.errors import StudyError
from hnet.job import heartbeat
from hnet.rundir import CKPT, CKPT_PREV, CONFIG, FAILED, HEARTBEAT, LOSSES, METRICS

DONE, RUNNING, INTERRUPTED, FAILED_STATE, NOT_STARTED = (
    "done",
    "running",
    "interrupted",
    "failed",
    "not started",
)
STATES = (DONE, RUNNING, INTERRUPTED, FAILED_STATE, NOT_STARTED)
UNRECORDED = (
    "not recorded by Snakemake (yet): its next run rewrites metrics.json from the final "
    "checkpoint, without training"
)
GRID = "grid.json"  # written by the workflow's check_study rule
LOGS = "logs"


@dataclass(frozen=True)
class Expected:
    """A cell the study expects, where its run directory and Snakemake log are."""

    benchmark: str
    scenario: str
    method: str
    size: str
    seed: int
    run_dir: str  # relative to the study's results directory
    stage: str = "final"  # or "tuning" (studies with sweeps)
    point_dir: str = ""  # tuning cells: the swept point's directory

    @property
    def group(self) -> tuple[str, str, str]:
        """What ``hnet status`` counts by: benchmark, scenario, method (tuning cells apart)."""
        method = self.method if self.stage == "final" else f"{self.method} (tuning)"
        return (self.benchmark, self.scenario, method)

    def log_path(self, root: Path) -> Path:
        """The Snakemake log of the cell's job (``workflow/rules/train.smk``): one per cell, or
        one per pack of seeds (``pack<first>-<last>.log`` beside it)."""
        head = f"{self.benchmark}/{self.scenario}/{self.method}/{self.size}"
        if self.stage == "tuning":
            return root / LOGS / "tuning" / head / self.point_dir / f"seed{self.seed}.log"
        own = root / LOGS / "train" / head / f"seed{self.seed}.log"
        if own.exists():
            return own
        for pack in sorted((root / LOGS / "train" / head).glob("pack*-*.log")):
            first, _, last = pack.stem.removeprefix("pack").partition("-")
            if first.isdigit() and last.isdigit() and int(first) <= self.seed <= int(last):
                return pack
        return own


@dataclass
class CellState:
    """One cell's state and what the files say about it."""

    cell: Expected
    state: str
    task: int | None = None  # 0-based position (next step), running and interrupted cells
    step: int | None = None
    iters: list[int] | None = None  # steps of every task, where known
    resume: tuple[int, int] | None = None  # the checkpoint a rerun starts from
    checkpoint: bool = False  # a checkpoint file exists (resume point unknown without heartbeat)
    host: str = ""
    pid: int | None = None
    beat_age: float | None = None  # seconds since the heartbeat was written
    attempt_seconds: float | None = None  # running: seconds since this attempt started
    start: tuple[int, int] | None = None  # where this attempt started
    note: str = ""  # anything else a reader should know
    error: str = ""  # failed: the first line of the error
    log: str = ""  # failed: the job's log
    metrics: dict[str, Any] = field(default_factory=dict)  # done: timings and resources

    @property
    def fraction(self) -> float | None:
        """Share of the cell's steps done (running and interrupted cells with known counts)."""
        return fraction_of(self.iters, self.task, self.step)


def fraction_of(iters: list[int] | None, task: int | None, step: int | None) -> float | None:
    if not iters or task is None or step is None or sum(iters) == 0:
        return None
    return min(1.0, (sum(iters[:task]) + step) / sum(iters))


TIMING_KEYS = (
    "train_seconds",
    "process_seconds",
    "wall_seconds",
    "startup_seconds",
    "resumed",
    "threads",
    "device",
)


def _done_metrics(run_dir: str) -> dict[str, Any]:
    """The timings and resources of a finished cell ({} when metrics.json is unreadable). Plain
    strings, not pathlib: this runs for every finished cell of a study."""
    try:
        with open(os.path.join(run_dir, METRICS), "rb") as f:
            m = json.loads(f.read())
        return {k: m.get(k) for k in TIMING_KEYS} if isinstance(m, dict) else {}
    except (OSError, ValueError):
        return {}


def first_line(text: Any, limit: int = 200) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failure(run_dir: Path) -> tuple[str, float]:
    """failed.json's error as one line, and when it was written."""
    path = run_dir / FAILED
    try:
        mtime = path.stat().st_mtime
        f = json.loads(path.read_text())
        name, message = f.get("error", ""), first_line(f.get("message", ""))
        return (f"{name}: {message}" if name else message), mtime
    except (OSError, ValueError, AttributeError) as e:
        return f"unreadable failed.json ({e})", 0.0


def _last_logged(run_dir: Path) -> tuple[int, int] | None:
    """(task, step) after the loss log's last line: the position of a run from before
    heartbeats. Reads the file's tail only."""
    try:
        with open(run_dir / LOSSES, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 512))
            lines = f.read().splitlines()
        last = json.loads(lines[-1])
        return int(last["task"]), int(last["step"]) + 1
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _config_iters(run_dir: Path) -> list[int] | None:
    try:
        per = json.loads((run_dir / CONFIG).read_text())["train"].get("iters_per_task")
        return [int(n) for n in per] if per else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def classify(
    cell: Expected, root: Path, now: float, host: str, incomplete: frozenset[str] = frozenset()
) -> CellState:
    """The state of one cell from its run directory (one listing, then only the files that
    decide); ``incomplete``: the run directories of jobs Snakemake marked incomplete
    (:func:`snakemake_incomplete`)."""
    path = os.path.join(root, cell.run_dir)
    try:
        names = set(os.listdir(path))
    except OSError:
        return CellState(cell, NOT_STARTED)
    if METRICS in names:
        done = CellState(cell, DONE, metrics=_done_metrics(path))
        if cell.run_dir in incomplete:
            done.note = UNRECORDED
        return done
    run_dir = Path(path)
    beat = heartbeat.read(run_dir) if HEARTBEAT in names else None
    s = CellState(cell, INTERRUPTED)
    if beat is not None:
        s.task, s.step, s.iters = beat.task, beat.step, beat.iters
        s.resume, s.start, s.host, s.pid = beat.checkpoint, beat.start, beat.host, beat.pid
        s.beat_age = max(0.0, now - beat.updated)
        if heartbeat.alive(beat, now, host):
            s.state, s.attempt_seconds = RUNNING, max(0.0, now - beat.started)
            return s
    if FAILED in names:
        error, when = _failure(run_dir)
        # the last attempt's failure, not one older than the attempt that followed it
        if beat is None or beat.state == heartbeat.FAILED or beat.started <= when:
            s.state, s.error = FAILED_STATE, error
            s.log = str(cell.log_path(root))
            return s
    s.checkpoint = "state" in names and any((run_dir / c).exists() for c in (CKPT, CKPT_PREV))
    if beat is None:
        if not (s.checkpoint or LOSSES in names or CONFIG in names):
            return CellState(cell, NOT_STARTED)
        at = _last_logged(run_dir)
        if at is not None:
            s.task, s.step = at
            s.iters = _config_iters(run_dir)
    return s


def snakemake_incomplete(root: Path) -> frozenset[str]:
    """Run directories (relative to ``root``, ``<workdir>/results/<study>``) whose training job
    Snakemake marked incomplete: started and not recorded as finished. Snakemake keeps one
    empty file per output in ``<workdir>/.snakemake/incomplete/``, named by the output path in
    URL-safe base64 (split into ``@``-prefixed directories where a name would be too long).
    Read only; an unreadable or changed layout yields nothing."""
    base = Path(root).resolve()
    markers = base.parent.parent / ".snakemake" / "incomplete"
    prefix = f"{base.parent.name}/{base.name}/"
    found = set()
    for dirpath, _, files in os.walk(markers):
        rel = Path(dirpath).relative_to(markers)
        for name in files:
            encoded = "".join(part.removeprefix("@") for part in (*rel.parts, name))
            try:
                path = base64.urlsafe_b64decode(encoded).decode()
            except (ValueError, UnicodeDecodeError):
                continue  # not a marker (e.g. "migration_underway")
            if path.startswith(prefix) and path.endswith("/" + METRICS):
                found.add(path[len(prefix) : -len(METRICS) - 1])
    return frozenset(found)


# -- the study ------------------------------------------------------------------------------


@dataclass
class Study:
    """The study's name, its results directory, expected cells and (when given) its config."""

    name: str
    root: Path
    cells: list[Expected]
    config: dict[str, Any] | None = None


def _cells_of_grid(record: dict[str, Any]) -> list[Expected]:
    def expected(c: dict[str, Any], *stage: str) -> Expected:
        axes = (str(c["benchmark"]), str(c["scenario"]), str(c["method"]), str(c["size"]))
        return Expected(*axes, int(c["seed"]), str(c["run_dir"]), *stage)

    final = [expected(c) for c in record["cells"]]
    tuning = [expected(c, "tuning", str(c["point_dir"])) for c in record.get("tuning", [])]
    return final + tuning


def load_grid_file(grid: Path) -> Study:
    """A study from its grid file; run directories are relative to the file's directory."""
    try:
        record = json.loads(grid.read_text())
        cells = _cells_of_grid(record)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(
            f"{grid}: not a readable grid file ({type(e).__name__}: {e}); rerun the study "
            "(its check_study step writes it again), or give the study config instead."
        ) from None
    return Study(str(record.get("study", grid.parent.name)), grid.parent, cells)


def load_study(target: str | Path, results: str | Path | None = None) -> Study:
    """A study from its results directory (its ``grid.json``) or its config file (expanded as
    the Snakefile does; results in ``results/<study>`` unless ``results`` says otherwise)."""
    target = Path(target)
    if target.is_dir():
        if not (target / GRID).exists():
            raise StudyError(
                f"{target} has no {GRID}: it is not a study's results directory, or the study "
                "has not passed its checks yet (rule check_study writes it). Give the study "
                f"config instead: hnet status <study>.yaml (make status STUDY_CONFIG=...)."
            )
        return load_grid_file(target / GRID)
    if not target.exists():
        raise StudyError(
            f"hnet status {target}: no such file or directory; give a study's results directory "
            "(results/<study>) or its config file."
        )
    from hnet.study.configfile import load_file
    from hnet.study.grid import expand, tuning_cells, tuning_record

    config = load_file(target)  # refuses a config that would make Snakemake run code
    cells = expand(config)
    root = Path(results) if results is not None else Path("results") / config["study"]
    record = {
        "cells": [vars(c) | {"run_dir": c.run_dir} for c in cells],
        "tuning": tuning_record(config, tuning_cells(config, cells)),
    }
    return Study(config["study"], root, _cells_of_grid(record), config)


@dataclass
class StudyStatus:
    study: Study
    cells: list[CellState]
    time: float  # when it was read (seconds since the epoch)

    def counts(self, cells: list[CellState] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for s in self.cells if cells is None else cells:
            out[s.state] += 1
        return out

    def groups(self) -> dict[tuple[str, str, str], list[CellState]]:
        """Cells by benchmark × scenario × method, in the grid's order."""
        out: dict[tuple[str, str, str], list[CellState]] = {}
        for s in self.cells:
            out.setdefault(s.cell.group, []).append(s)
        return out

    def of(self, state: str) -> list[CellState]:
        return [s for s in self.cells if s.state == state]


def study_status(study: Study, now: float | None = None, host: str | None = None) -> StudyStatus:
    """Classify every expected cell of ``study`` (:func:`classify`)."""
    now = time.time() if now is None else now
    host = host or socket.gethostname()
    incomplete = snakemake_incomplete(study.root)
    cells = [classify(c, study.root, now, host, incomplete) for c in study.cells]
    return StudyStatus(study, cells, now)
