"""The launcher of ``hnet train``: from a :class:`~hnet.job.request.TrainRequest` to run dirs.

:func:`plan` makes every decision, changing nothing: each seed's config and run directory;
whether an existing run directory is moved aside first (``--restart``, or ``--if-changed
restart`` and a run of another config, :func:`hnet.job.integrity.inspect_run`) or left to the job,
which reuses a finished run, resumes a checkpoint or refuses a run of another config
(:func:`hnet.job.integrity.prepare_run`); whether the seeds of a seed list train packed in this
process (:func:`hnet.methods.common.packed.refusal` says why not) or one ``hnet train`` process per
seed; and where the MLflow mirror goes. :func:`launch` carries the plan out through the job
layer's two entry points, :func:`hnet.job.run.run_job` and :func:`hnet.job.packed.run_packed`,
mirroring each seed to its own MLflow run (:class:`hnet.tracking.mirror.Mirror`).

It sits above the job and tracking layers (it wires one into the other) and below the command
line, which only builds the request and prints what comes back.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hnet.job.request import Tracking, TrainRequest
from hnet.rundir import move_aside

Mode = Literal["single", "packed", "processes"]


@dataclass(frozen=True)
class Plan:
    """What :func:`launch` will do for a request; see the module docstring."""

    request: TrainRequest
    mode: Mode  # single: one seed in this process; packed: the seed list stacked in this
    # process; processes: one `hnet train --seed` process per seed, one after the other
    why_not_packed: str | None  # for a seed list that is not packed: why
    cfgs: tuple[dict[str, Any], ...]
    outs: tuple[Path, ...]
    scratch: tuple[str | None, ...]
    # Per seed, why its existing run directory is moved aside ("--restart", "config changed"),
    # or None (no directory, or the job reuses / resumes / refuses it). Processes decide it
    # themselves: None for all.
    aside: tuple[str | None, ...]
    # (MLflow URI, or None for no live mirror; experiment). Processes decide it themselves.
    tracking: tuple[str | None, str] | None


@dataclass(frozen=True)
class SeedRun:
    """One seed's outcome: its result (metrics.json's contents) when it trained in this process,
    else the exit status of its own process."""

    seed: int
    out: Path
    result: dict[str, Any] | None = None
    status: int = 0


def packing_refusal(cfg: dict[str, Any]) -> str | None:
    """Why the seeds of ``cfg`` cannot train packed, None if they can."""
    from hnet.methods.common.packed import refusal

    return refusal(cfg)


def destination(tracking: Tracking) -> tuple[str | None, str]:
    """(MLflow URI or None for no live mirror, experiment)."""
    from hnet.tracking.store import read_destination, resolve_uri

    if tracking.off:
        return None, tracking.experiment
    if tracking.file:
        dest = read_destination(tracking.file)
        return (dest["uri"] if dest["live"] else None), dest["experiment"]
    return resolve_uri(tracking.uri), tracking.experiment


def aside_reason(request: TrainRequest, out: Path, cfg: dict[str, Any]) -> str | None:
    """Why ``out`` is moved aside before the job starts, None if it is not."""
    if not out.exists():
        return None
    if request.restart:
        return "--restart"
    if request.if_changed == "restart":
        from hnet.job.integrity import inspect_run

        if inspect_run(out, cfg).changed:
            return "config changed"
    return None


def plan(request: TrainRequest) -> Plan:
    """Decide everything :func:`launch` does for ``request``; changes nothing. Raises what a
    bad request raises (:class:`hnet.errors.ConfigError`, :class:`hnet.errors.HnetError`)."""
    cfgs = request.configs()
    outs = request.outs()
    scratch = request.scratches()
    mode: Mode = "single"
    why = None
    if request.seed_list:
        why = "--no-pack" if not request.pack else packing_refusal(cfgs[0])
        mode = "packed" if why is None else "processes"
    if mode == "processes":
        aside: tuple[str | None, ...] = (None,) * len(outs)
        tracking = None
    else:
        aside = tuple(aside_reason(request, o, c) for o, c in zip(outs, cfgs, strict=True))
        tracking = destination(request.tracking)
    return Plan(request, mode, why, tuple(cfgs), tuple(outs), tuple(scratch), aside, tracking)


def launch(request: TrainRequest | Plan) -> list[SeedRun]:
    """Train what ``request`` asks for (planned by :func:`plan` unless given a plan): one
    :class:`SeedRun` per seed, in the order of its seeds. In ``processes`` mode every seed is
    tried; its failures are the runs with a nonzero ``status``."""
    p = request if isinstance(request, Plan) else plan(request)
    if p.mode == "processes":
        return one_process_per_seed(p)
    for out, why in zip(p.outs, p.aside, strict=True):
        if why is not None:
            move_aside(out)
    results = [train_with_mirror(p)] if p.mode == "single" else train_packed_with_mirrors(p)
    runs = zip(p.request.seeds, p.outs, results, strict=True)
    return [SeedRun(s, out, res) for s, out, res in runs]


def train_with_mirror(p: Plan) -> dict[str, Any]:
    """The one seed's job, mirrored to its MLflow run if the plan says so."""
    from hnet.job.run import run_job

    (cfg,), (out,), (scratch,) = p.cfgs, p.outs, p.scratch
    uri, experiment = p.tracking or (None, "")
    progress = p.request.progress
    if uri is None:
        return run_job(cfg, out, progress=progress, scratch=scratch)
    from hnet.tracking.mirror import Mirror

    with Mirror(uri, experiment, cfg, out) as mirror:
        return run_job(cfg, out, progress=progress, scratch=scratch, on_event=mirror.on_event)


def train_packed_with_mirrors(p: Plan) -> list[dict[str, Any] | None]:
    """The packed job, each seed mirrored to its own MLflow run as its own job would be."""
    from hnet.job.packed import run_packed

    cfgs, outs = list(p.cfgs), list(p.outs)
    scratch: list[Path | None] = [None if s is None else Path(s) for s in p.scratch]
    uri, experiment = p.tracking or (None, "")
    progress = p.request.progress
    if uri is None:
        return run_packed(cfgs, outs, progress=progress, scratch=scratch)
    from hnet.tracking.mirror import Mirror

    with contextlib.ExitStack() as stack:
        mirrors = [
            stack.enter_context(Mirror(uri, experiment, cfg, out))
            for cfg, out in zip(cfgs, outs, strict=True)
        ]
        events: list[Any] = [m.on_event for m in mirrors]
        return run_packed(cfgs, outs, progress=progress, scratch=scratch, on_event=events)


def seed_command(request: TrainRequest, seed: int) -> list[str]:
    """The command line of ``seed``'s own ``hnet train`` process."""
    one = request.for_seed(seed)
    return [sys.executable, "-m", "hnet.cli", "train", *one.argv()]


def one_process_per_seed(p: Plan) -> list[SeedRun]:
    """Each seed as its own ``hnet train`` process, one after the other; every seed is tried."""
    runs = []
    for s, out in zip(p.request.seeds, p.outs, strict=True):
        code = subprocess.run(seed_command(p.request, s)).returncode
        runs.append(SeedRun(s, out, status=code))
    return runs
