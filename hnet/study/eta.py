"""When a study will be done: the remaining cells' cost from the cells already measured, spread
over the jobs that run in parallel.

A finished cell's cost is the time its job held a slot (:func:`job_seconds`). An unfinished
cell costs the median of finished cells like it: same benchmark, scenario, method and size;
else same benchmark, method and size; else same benchmark and method; else same benchmark
(never across benchmarks, whose costs differ by orders of magnitude). Where no cell like it has
finished, a running cell's own pace stands in (its attempt's seconds over the share of steps it
took). Running and interrupted cells cost their remaining share of that. Failed cells are left
out: they do not run again until someone fixes them.

With ``jobs`` slots, the study ends no earlier than the work divided by the slots, and no
earlier than its longest remaining cell: the estimate is the larger of the two (greedy
scheduling ends within one longest cell of it).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hnet.study.status import (
    DONE,
    INTERRUPTED,
    NOT_STARTED,
    RUNNING,
    CellState,
    Expected,
    fraction_of,
)

MIN_PACE_FRACTION = 0.02  # a running cell's own pace is trusted once it took 2 % of its steps


def job_seconds(m: dict[str, Any]) -> float | None:
    """A finished cell's cost from its metrics.json: the process's lifetime (start-up, data,
    training, evaluation) for a run trained in one go; a resumed run's process covers only its
    last attempt, so its training seconds (summed over attempts) plus one start-up instead.
    Packed seeds each count their pack's process (an overestimate, by up to the pack size)."""
    train, process = _num(m.get("train_seconds")), _num(m.get("process_seconds"))
    if process is not None and not m.get("resumed") and (train is None or process >= train):
        return process
    if train is None:
        return None
    return train + (_num(m.get("startup_seconds")) or 0.0)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _levels(c: Expected) -> list[tuple[str, ...]]:
    """The keys a cell's cost is looked up by, most specific first."""
    m = c.method if c.stage == "final" else f"{c.method}/tuning"
    return [
        (c.benchmark, c.scenario, m, c.size),
        (c.benchmark, m, c.size),
        (c.benchmark, m),
        (c.benchmark,),
    ]


def own_total(s: CellState) -> float | None:
    """A running cell's whole cost at its own pace so far, once it has taken enough steps."""
    f = s.fraction
    if s.state != RUNNING or f is None or s.attempt_seconds is None:
        return None
    f0 = 0.0 if s.start is None else (fraction_of(s.iters, *s.start) or 0.0)
    if f - f0 < MIN_PACE_FRACTION:
        return None
    return s.attempt_seconds / (f - f0)


def resumes_at(s: CellState) -> float | None:
    """Share of a cell's steps that will not be trained again: where a running cell is, where
    an interrupted one's checkpoint is (steps after it are trained again)."""
    if s.state == RUNNING:
        return s.fraction
    return fraction_of(s.iters, *s.resume) if s.resume is not None else None


@dataclass
class Eta:
    """The estimate: ``seconds`` until the last cell ends (None when no remaining cell has an
    estimate), from ``work_seconds`` of remaining work on ``jobs`` slots."""

    jobs: int
    work_seconds: float
    longest_seconds: float
    seconds: float | None
    measured: int  # finished cells whose cost was read
    estimated: int  # unfinished cells with an estimate
    unknown: int  # unfinished cells without one (no finished cell like them)
    remaining: dict[str, float]  # per cell run_dir: its remaining seconds


def estimate(cells: list[CellState], jobs: int) -> Eta:
    """The remaining time of the study's ``cells`` on ``jobs`` parallel slots."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    costs: dict[tuple[str, ...], list[float]] = {}
    paces: dict[tuple[str, ...], list[float]] = {}
    measured = 0
    for s in cells:
        cost = job_seconds(s.metrics) if s.state == DONE else None
        if cost is not None:
            measured += 1
            for key in _levels(s.cell):
                costs.setdefault(key, []).append(cost)
        elif (pace := own_total(s)) is not None:
            for key in _levels(s.cell):
                paces.setdefault(key, []).append(pace)
    cost_median = {key: statistics.median(v) for key, v in costs.items()}
    pace_median = {key: statistics.median(v) for key, v in paces.items()}

    def cost_of(c: Expected) -> float | None:
        for key in _levels(c):
            for table in (cost_median, pace_median):
                if key in table:
                    return table[key]
        return None

    remaining: dict[str, float] = {}
    unknown = 0
    for s in cells:
        if s.state not in (RUNNING, INTERRUPTED, NOT_STARTED):
            continue
        total = cost_of(s.cell)
        if total is None:
            unknown += 1
            continue
        remaining[s.cell.run_dir] = total * (1.0 - (resumes_at(s) or 0.0))
    work = sum(remaining.values())
    longest = max(remaining.values(), default=0.0)
    seconds = max(work / jobs, longest) if remaining else None
    return Eta(jobs, work, longest, seconds, measured, len(remaining), unknown, remaining)


# -- parallel jobs ----------------------------------------------------------------------------


def default_jobs(profile: str | Path | None, threads: int) -> tuple[int, str]:
    """How many cells run at once, and where that comes from: the Snakemake profile's ``jobs``
    (a cluster's limit of queued jobs), else its ``cores`` (``all``: this machine's) divided by
    the threads of one job; without a profile, this machine's cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    settings: dict[str, Any] = {}
    if profile is not None:
        path = Path(profile) / "config.yaml"
        if path.exists():
            import yaml

            loaded = yaml.safe_load(path.read_text()) or {}
            settings = loaded if isinstance(loaded, dict) else {}
    where = f"profile {profile}" if settings else "this machine"
    if isinstance(settings.get("jobs"), int):
        return max(1, settings["jobs"]), f"jobs: {settings['jobs']} of {where}"
    if isinstance(settings.get("cores"), int):
        cores = settings["cores"]
    n = max(1, cores // max(1, threads))
    return n, f"{cores} cores of {where} / {threads} thread(s) per job"
