"""``hnet status``: where a study stands: cells done, running, interrupted, failed and not
started per benchmark × scenario × method, how far the unfinished ones are, and when the study
will be done. Reads files only (:mod:`hnet.study.status`); safe beside a running study."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

SCHEMA = "hnet-status/1"
DEFAULT_PROFILE = Path("workflow/profiles/local")
LISTED = 10  # cells listed per state unless --all


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="where a study stands: cells done, running, interrupted, failed; time left",
        description="Where a study stands, read from its files (never Snakemake's lock).",
    )
    p.add_argument(
        "study",
        metavar="STUDY",
        help="the study's results directory (results/<study>, holding grid.json) or its config",
    )
    p.add_argument(
        "--results",
        metavar="DIR",
        default=None,
        help="with a config file: the study's results directory (default: results/<study>)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="cells that run at once, for the time left (default: the profile's jobs, else its "
        "cores / threads per job)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help=f"the Snakemake profile the study runs with (default: {DEFAULT_PROFILE} if present)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document (schema hnet-status/1)")
    p.add_argument("--all", action="store_true", help="list every unfinished cell, not the first")
    p.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=10.0,
        default=None,
        metavar="SECONDS",
        help="refresh every SECONDS (default 10) until Ctrl-C",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.errors import ConfigError
    from hnet.study.status import load_study

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give the number of cells that run at once (≥ 1).")
    if args.watch is not None and args.watch <= 0:
        raise ConfigError(f"--watch {args.watch:g}: give a refresh interval in seconds (> 0).")
    study = load_study(args.study, args.results)
    if args.watch is None:
        print(render(study, args))
        return 0
    try:
        while True:
            text = render(study, args)
            if not args.json:
                text = "\033[H\033[J" + text  # clear the terminal, then the new state
            print(text, flush=True)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def render(study: Any, args: argparse.Namespace) -> str:
    from hnet.study.eta import default_jobs, estimate
    from hnet.study.status import study_status

    status = study_status(study)
    if args.jobs is not None:
        jobs, source = args.jobs, "--jobs"
    else:
        profile = args.profile or (DEFAULT_PROFILE if DEFAULT_PROFILE.is_dir() else None)
        jobs, source = default_jobs(profile, threads_per_job(study, status))
    eta = estimate(status.cells, jobs)
    if args.json:
        return json.dumps(as_json(status, eta, source), indent=1)
    return as_text(status, eta, source, args.all)


def threads_per_job(study: Any, status: Any) -> int:
    """A training job's threads: the study config's resources, else what finished cells ran."""
    if study.config is not None:
        from hnet.study.grid import resources

        return max(resources(study.config, b)["threads"] for b in study.config["benchmarks"])
    seen = [s.metrics.get("threads") for s in status.cells if s.metrics.get("threads")]
    return int(statistics.median(seen)) if seen else 1


# -- text ---------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """12 s, 7 min, 3.4 h, 2.1 days."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def position(s: Any) -> str:
    """ "task 3 of 5, step 1,200 of 2,000" (1-based task, steps taken in it)."""
    if s.task is None:
        return "position unknown"
    tasks = f" of {len(s.iters)}" if s.iters else ""
    steps = f" of {s.iters[s.task]:,}" if s.iters and s.task < len(s.iters) else ""
    if s.iters and s.task >= len(s.iters):
        return "all tasks trained, writing the result"
    return f"task {s.task + 1}{tasks}, step {s.step:,}{steps}"


def resume_point(s: Any) -> str:
    if s.resume is not None:
        task, step = s.resume
        if s.iters and task >= len(s.iters):
            return "all tasks trained: a rerun only writes the result"
        return f"resumes from task {task + 1}, step {step:,}"
    if s.checkpoint:
        return "resumes from its checkpoint"
    return "restarts from the beginning (no checkpoint)"


def as_text(status: Any, eta: Any, jobs_source: str, everything: bool) -> str:
    from hnet.study.status import (
        DONE,
        FAILED_STATE,
        INTERRUPTED,
        NOT_STARTED,
        RUNNING,
        STATES,
        UNRECORDED,
    )

    study, counts = status.study, status.counts()
    total = len(status.cells)
    head = ", ".join(f"{counts[k]:,} {k}" for k in STATES if counts[k])
    lines = [f"study {study.name} ({study.root}): {total:,} cells: {head}", ""]
    header = ("benchmark", "scenario", "method", *STATES)
    rows = [header]
    for key, cells in status.groups().items():
        c = status.counts(cells)
        rows.append((*key, *(f"{c[k]:,}" if c[k] else "·" for k in STATES)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        left = [r[i].ljust(widths[i]) for i in range(3)]
        right = [r[i].rjust(widths[i]) for i in range(3, len(header))]
        lines.append("  ".join(left + right).rstrip())

    def listing(state: str, why: str, describe: Any) -> None:
        cells = status.of(state)
        if not cells:
            return
        lines.extend(["", f"{state}: {len(cells):,}{why}"])
        shown = cells if everything else cells[:LISTED]
        width = max(len(s.cell.run_dir) for s in shown)
        for s in shown:
            for i, text in enumerate(describe(s)):
                lines.append(
                    f"  {s.cell.run_dir.ljust(width)}  {text}" if i == 0 else f"    {text}"
                )
        if len(shown) < len(cells):
            lines.append(f"  … and {len(cells) - len(shown):,} more (--all lists them)")

    def running(s: Any) -> list[str]:
        where = f"pid {s.pid} on {s.host}, heartbeat {duration(s.beat_age or 0)} ago"
        return [f"{position(s)}  ({where})"]

    def interrupted(s: Any) -> list[str]:
        at = f"stopped at {position(s)}" if s.task is not None else "stopped"
        return [f"{at}; {resume_point(s)}"]

    def failed(s: Any) -> list[str]:
        return [s.error or "(no error recorded)", f"log: {s.log}"]

    unrecorded = [s for s in status.of(DONE) if s.note]
    if unrecorded:
        lines.extend(["", f"done, {UNRECORDED}: {len(unrecorded):,}"])
        lines.extend(f"  {s.cell.run_dir}" for s in unrecorded[: None if everything else LISTED])
        if not everything and len(unrecorded) > LISTED:
            lines.append(f"  … and {len(unrecorded) - LISTED:,} more (--all lists them)")
    listing(RUNNING, "", running)
    listing(INTERRUPTED, " (a rerun resumes them)", interrupted)
    listing(FAILED_STATE, " (fix the cause, then rerun)", failed)
    if counts[NOT_STARTED]:
        lines.extend(["", f"{NOT_STARTED}: {counts[NOT_STARTED]:,}"])
    lines.extend(["", time_left(eta, jobs_source)])
    return "\n".join(lines)


def time_left(eta: Any, jobs_source: str) -> str:
    left = eta.estimated + eta.unknown
    if left == 0:
        return "time left: none: no cell is waiting to train"
    unknown = (
        f"; {eta.unknown:,} cell(s) without an estimate (nothing like them has finished)"
        if eta.unknown
        else ""
    )
    if eta.seconds is None:
        return f"time left: unknown until a cell of each kind has finished{unknown}"
    return (
        f"time left: about {duration(eta.seconds)} ({eta.estimated:,} cells, "
        f"{duration(eta.work_seconds)} of work on {eta.jobs:,} parallel jobs [{jobs_source}]; "
        f"costs from {eta.measured:,} finished cells{unknown})"
    )


# -- JSON ---------------------------------------------------------------------------------------


def cell_json(s: Any, eta: Any) -> dict[str, Any]:
    from hnet.study.eta import job_seconds

    c = s.cell
    out: dict[str, Any] = {
        "benchmark": c.benchmark,
        "scenario": c.scenario,
        "method": c.method,
        "size": c.size,
        "seed": c.seed,
        "stage": c.stage,
        "run_dir": c.run_dir,
        "state": s.state,
    }
    trained = bool(s.iters) and s.task is not None and s.task >= len(s.iters)
    if s.task is not None:
        task, step = (len(s.iters) - 1, s.iters[-1]) if trained else (s.task, s.step)
        out["progress"] = {
            "task": task + 1,
            "tasks": len(s.iters) if s.iters else None,
            "step": step,
            "steps": s.iters[task] if s.iters else None,
            "fraction": s.fraction,
        }
    if s.state in ("running", "interrupted"):
        out["resume_from"] = None
        if s.resume is not None and not (s.iters and s.resume[0] >= len(s.iters)):
            out["resume_from"] = {"task": s.resume[0] + 1, "step": s.resume[1]}
        out["checkpoint"] = s.checkpoint or s.resume is not None
        # what a rerun does: continue from the checkpoint, start over, or only write the result
        out["rerun"] = (
            "result only"
            if trained or (s.iters and s.resume and s.resume[0] >= len(s.iters))
            else "resume"
            if out["checkpoint"]
            else "restart"
        )
    if s.note:
        out["note"] = s.note
    if s.host:
        out["heartbeat"] = {"host": s.host, "pid": s.pid, "age_seconds": s.beat_age}
    if s.state == "failed":
        out["error"], out["log"] = s.error, s.log
    if s.state == "done":
        out["job_seconds"] = job_seconds(s.metrics)
        out["rerun"] = "result only" if s.note else "nothing"
    if c.run_dir in eta.remaining:
        out["remaining_seconds"] = eta.remaining[c.run_dir]
    return out


def as_json(status: Any, eta: Any, jobs_source: str) -> dict[str, Any]:
    study = status.study
    return {
        "schema": SCHEMA,
        "study": study.name,
        "results": str(study.root),
        "time": status.time,
        "counts": status.counts() | {"total": len(status.cells)},
        "groups": [
            {"benchmark": b, "scenario": sc, "method": m, "counts": status.counts(cells)}
            for (b, sc, m), cells in status.groups().items()
        ],
        "eta": {
            "seconds": eta.seconds,
            "work_seconds": eta.work_seconds,
            "longest_seconds": eta.longest_seconds,
            "jobs": eta.jobs,
            "jobs_from": jobs_source,
            "measured_cells": eta.measured,
            "estimated_cells": eta.estimated,
            "unknown_cells": eta.unknown,
        },
        "cells": [cell_json(s, eta) for s in status.cells],
    }
