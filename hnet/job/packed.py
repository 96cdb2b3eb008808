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

import contextlib
import sys
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from hnet.errors import JobInterrupted
from hnet.job.cores import shared_cores
from hnet.job.environment import process_age
from hnet.job.integrity import prepare_run
from hnet.job.result import scratch_reference, write_result
from hnet.job.run import Job, Listener, TrainingDiverged, log_line, record_failure
from hnet.job.signals import StopFlag
from hnet.methods.common.packed import Packed, pack
from hnet.methods.common.schedule import lr_factor
from hnet.rundir import FAILED, LOSSES


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
    with shared_cores(jobs[0].cfg["threads"]) as cores:  # one lease for the process
        for job in jobs:
            job.cores = cores
        errors, failed = train_packs(jobs)
    for i, job, r_scratch in todo:
        if job in failed:
            continue
        results[i] = write_result(job, r_scratch)
        (job.out / FAILED).unlink(missing_ok=True)
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
        loop = PackedLoop([jobs[n] for n in members])
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
        if not job.resumed:
            job.evaluate_row(None)
    except Exception as e:
        record_failure(job.out, e)
        raise


class PackedLoop:
    """The training loop of :meth:`Job.run` over several jobs at the same task and step."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.cores = jobs[0].cores  # the process's one lease
        self.logs: list[IO[bytes]] = []
        self.errors: list[Exception] = []  # divergences, one per seed taken out of the pack
        self.failed: list[Job] = []

    def run(self) -> None:
        jobs = self.jobs
        first_job = jobs[0]
        task0, step0 = first_job.task, first_job.step
        self.packed: Packed = pack([j.method for j in jobs])
        with StopFlag() as stop, contextlib.ExitStack() as stack:
            for job in jobs:
                log = stack.enter_context(open(job.out / LOSSES, "a+b", buffering=0))
                log.truncate(job.log_offset)
                log.seek(job.log_offset)
                self.logs.append(log)
            for t in range(task0, first_job.bench.n_tasks):
                if not self.jobs:
                    break
                self.train_task(t, step0 if t == task0 else 0, stop)
                if self.jobs:
                    self.finish_task(t, stop)

    def train_task(self, t: int, first: int, stop: StopFlag) -> None:
        jobs, cfg = self.jobs, self.jobs[0].cfg
        iters, bs = jobs[0].iters[t], cfg["train"]["batch_size"]
        if any(j.iters[t] != iters for j in jobs):
            raise ValueError(f"the packed seeds have different step counts for task {t + 1}")
        schedule, factor = cfg["train"]["lr_schedule"], None
        if first == 0:
            self.packed.store()
            for job in jobs:
                job.method.begin_task(t)
                job.sampler.start_task(job.bench.tasks[t].n_train)
            self.packed.refresh()
        self.first_bad = torch.full((len(jobs),), -1, device=jobs[0].device)
        self.bad_loss = torch.zeros(len(jobs), device=jobs[0].device)
        t0 = time.perf_counter()
        seeds = ",".join(str(j.cfg["seed"]) for j in jobs)
        self.bar = bar = jobs[0].progress_bar(t, first, iters, f" seeds {seeds}")
        for step in bar:
            for job in self.jobs:
                if job.startup_seconds is None:
                    job.startup_seconds = process_age()
            self.cores.update(t, step)
            if schedule != "none" and factor != (new := lr_factor(schedule, step, iters)):
                factor = new
                self.packed.scale_lr(factor)
            xs, ys = [], []
            for job in self.jobs:
                idx = job.sampler.next(bs).to(job.device)
                x, y = job.bench.tasks[t].train_batch(idx, job.augment_gen)
                xs.append(x)
                ys.append(y)
            losses = self.packed.train_step(t, torch.stack(xs), torch.stack(ys))
            # the first non-finite step of each seed, kept on the device: no sync per step
            bad = ~torch.isfinite(losses) & (self.first_bad < 0)
            self.first_bad = torch.where(bad, step, self.first_bad)
            self.bad_loss = torch.where(bad, losses, self.bad_loss)
            logged = step % cfg["train"]["log_every"] == 0 or step == iters - 1
            if logged or stop.signum is not None:  # before anything is logged or saved
                values = losses.tolist()
                self.check_finite(values, t)
                if not self.jobs:
                    return
            if logged:
                bar.set_postfix(loss=f"{sum(values) / len(values):.4f}", refresh=False)
                for job, log, loss in zip(self.jobs, self.logs, values, strict=True):
                    log_line(log, {"task": t, "step": step, "loss": loss})
                    job.emit("loss", {"task": t, "step": step, "loss": loss})
            if stop.signum is not None and step + 1 < iters:
                self.add_time(time.perf_counter() - t0)
                self.packed.store()
                for job, log in zip(self.jobs, self.logs, strict=True):
                    job.save_checkpoint(t, step + 1, log.tell())
                saved = f"checkpoints of seeds {seeds} saved in their run directories"
                stop.interrupt(f"at task {t + 1}, step {step + 1}", saved)
        self.packed.store()
        for job in self.jobs:
            job.method.end_task(t)
        self.packed.refresh()
        self.add_time(time.perf_counter() - t0)

    def add_time(self, seconds: float) -> None:
        """Each seed's share of the pack's training time."""
        for job in self.jobs:
            job.train_seconds += seconds / len(self.jobs)

    def check_finite(self, losses: list[float], t: int) -> None:
        """A seed whose loss was not finite at some step since the last check fails alone:
        failed.json naming that step, its last good checkpoint kept, out of the pack; the
        others go on. ``losses``: this step's, one per seed still in the pack."""
        first_bad, bad_loss = self.first_bad.tolist(), self.bad_loss.tolist()
        for n in reversed(range(len(losses))):
            job = self.jobs[n]
            if first_bad[n] < 0:
                continue
            cfg = job.cfg
            e = TrainingDiverged(
                f"Training diverged: the loss is {bad_loss[n]} at task {t + 1}, step "
                f"{first_bad[n] + 1} ({cfg['method']} on {cfg['benchmark']}, seed "
                f"{cfg['seed']}). The last good checkpoint is kept. Lower train.lr or the "
                "regularizer strength and run again with --restart."
            )
            print(f"seed {cfg['seed']}: {e}", file=sys.stderr)
            record_failure(job.out, e)
            self.errors.append(e)
            self.failed.append(job)
            if len(self.jobs) > 1:
                self.packed.drop(n)
            self.jobs.pop(n)
            self.logs.pop(n).close()
            losses.pop(n)
            keep = [i for i in range(len(self.first_bad)) if i != n]
            self.first_bad, self.bad_loss = self.first_bad[keep], self.bad_loss[keep]

    def finish_task(self, t: int, stop: StopFlag) -> None:
        """Evaluate every seed after task ``t`` and checkpoint it; stop if signalled."""
        for job, log in zip(self.jobs, self.logs, strict=True):
            job.evaluate_row(t)
            job.emit("row", {"task": t, "scores": job.R[t].tolist()})
            self.bar.write(
                f"seed {job.cfg['seed']} task {t + 1}/{job.bench.n_tasks}: score on tasks "
                f"1..{t + 1} = " + " ".join(f"{v:.2f}" for v in job.R[t, : t + 1])
            )
            job.save_checkpoint(t + 1, 0, log.tell())
        if stop.signum is not None and t + 1 < self.jobs[0].bench.n_tasks:
            stop.interrupt(f"after task {t + 1}", "checkpoints saved in the seeds' run directories")
