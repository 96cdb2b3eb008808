"""Several seeds of one grid cell in one process: K run directories, one training loop.

:func:`run_packed` takes K resolved configs that differ in the seed only and K run directories,
and writes each directory exactly as ``run_job`` would for that seed alone: config.json,
losses.jsonl, state/ckpt.pt (+ ckpt.prev.pt) and metrics.json, same keys and same formats, so
the report, ``hnet sync`` and an unpacked resume cannot tell the difference. Each seed is an
ordinary :class:`~hnet.job.run.Job` (its own data, sampler, augmentation stream, method built
under its seed, checkpoints, evaluation); only the steps are taken together, on parameters
stacked over seeds (:mod:`hnet.methods.common.packed`).

- A seed whose run directory is finished is skipped; the pack trains the others (a single
  seed left trains as the plain job: packing one seed only adds vmap's overhead).
- Seeds resume from their own checkpoints. Seeds at different points (one finished a task more
  than another, say after a damaged checkpoint) train as separate packs, one after the other.
- A seed whose loss becomes NaN or infinite fails alone (its failed.json, its last good
  checkpoint kept); the others go on and the error is raised at the end.
- A stop signal checkpoints every seed of the pack at the same task and step.

``train_seconds`` of a packed seed is its share of the pack's training time (the time divided by
the seeds trained together); ``wall_seconds`` and ``process_seconds`` are the process's, as for
a single job.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from hnet.errors import JobInterrupted
from hnet.job.cores import shared_cores
from hnet.job.heartbeat import DONE, Beats
from hnet.job.integrity import prepare_run
from hnet.job.loop import TrainingLoop, record_failure
from hnet.job.result import scratch_reference, write_result
from hnet.job.run import Job, Listener
from hnet.rundir import FAILED


def run_packed(
    cfgs: list[dict[str, Any]],
    outs: list[Path],
    progress: bool | None = None,
    scratch: list[Path | None] | None = None,
    on_event: list[Listener | None] | None = None,
) -> list[dict[str, Any] | None]:
    """Train the seeds of ``cfgs`` (one config, several seeds; the method must be packable,
    :func:`hnet.methods.common.packed.refusal`) into ``outs``; return each seed's metrics (None for
    a seed that failed; the first failure is raised after the others are done)."""
    k = len(cfgs)
    scratch = scratch or [None] * k
    on_event = on_event or [None] * k
    results: list[dict[str, Any] | None] = [None] * k
    todo: list[tuple[int, Job, np.ndarray | None]] = []
    for i, (cfg, out) in enumerate(zip(cfgs, outs, strict=True)):
        out = Path(out)
        try:
            r_scratch = scratch_reference(scratch[i], cfg) if scratch[i] is not None else None
            finished, checkpoint = prepare_run(out, cfg)
        except Exception as e:
            record_failure(out, e)
            raise
        if finished is not None:
            print(f"seed {cfg['seed']}: {out} is finished, skipped", file=sys.stderr)
            results[i] = finished
        else:
            todo.append((i, Job(cfg, out, progress, on_event[i], checkpoint), r_scratch))
    if len(todo) == 1:  # one seed to train: the plain job, without vmap's overhead
        i, job, r_scratch = todo[0]
        try:
            results[i] = job.run(r_scratch)
        except JobInterrupted:
            raise
        except Exception as e:
            record_failure(job.out, e)
            raise
        (job.out / FAILED).unlink(missing_ok=True)
        return results
    if not todo:
        return results
    jobs = [job for _, job, _ in todo]
    with Beats([job.out for job in jobs]) as beats:
        for job, beat in zip(jobs, beats, strict=True):
            job.beat = beat
        with shared_cores(jobs[0].cfg["threads"]) as cores:  # one lease for the process
            for job in jobs:
                job.cores = cores
            errors, failed = train_packs(jobs)
        for i, job, r_scratch in todo:
            if job in failed:
                continue
            results[i] = write_result(job, r_scratch)
            (job.out / FAILED).unlink(missing_ok=True)
            job.beat.end(DONE)
    if errors:
        raise errors[0]
    return results


def train_packs(jobs: list[Job]) -> tuple[list[Exception], list[Job]]:
    """Set the jobs up, then train each group of them at the same task and step as one pack;
    returns the divergences and the jobs that failed."""
    for job in jobs:
        start(job)
    groups: dict[tuple[int, int], list[int]] = {}
    for n, job in enumerate(jobs):
        groups.setdefault((job.task, job.step), []).append(n)
    errors: list[Exception] = []
    failed: list[Job] = []
    for members in groups.values():
        loop = TrainingLoop([jobs[n] for n in members])
        try:
            loop.run()
        except JobInterrupted:
            raise
        except Exception as e:
            for job in loop.jobs:
                record_failure(job.out, e)
            raise
        errors += loop.errors
        failed += loop.failed
    return errors, failed


def start(job: Job) -> None:
    """A job's set-up as :meth:`Job.run` does it: its seed's data, method (initialised under
    its seed's streams), sampler; restored from its checkpoint or evaluated untrained."""
    try:
        job.setup()
        job.resumed = job.restore()
        job.begin_beat()
        if not job.resumed:
            job.evaluate_row(None)
    except Exception as e:
        record_failure(job.out, e)
        raise
