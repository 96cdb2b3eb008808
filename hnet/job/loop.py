"""The training loop: one job, or the jobs of a pack of seeds, from their task and step to the
end of the sequence.

Per task: begin it (the method's ``begin_task``, the sampler's epoch), take its steps, end it,
evaluate every task, checkpoint. Per step: the learning-rate schedule, each job's batch, one
step of the trainer (:func:`hnet.methods.common.packed.pack`: the method itself for one job, the
seeds' parameters stacked for several), the loss log. A stop signal checkpoints every job at the
same task and step and ends the process (:mod:`hnet.job.signals`).

Losses stay on the device between log lines (a per-step read would wait for every step to
finish): each step's losses go into a window that is read where a log line is due or a
checkpoint is about to be written. A job whose loss was NaN or infinite at some step of the
window fails alone there (its failed.json names that step, its last good checkpoint is kept)
and leaves the pack; the others go on.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import IO, Any

import torch

from hnet.errors import HnetError
from hnet.files import write_json
from hnet.job import memory
from hnet.job.environment import process_age
from hnet.job.heartbeat import FAILED as FAILED_STATE
from hnet.job.signals import StopFlag
from hnet.methods.common.packed import pack
from hnet.methods.common.schedule import lr_factor
from hnet.rundir import FAILED, LOSSES


class TrainingDiverged(HnetError):
    """The loss became NaN or infinite."""


def record_failure(out: Path, e: Exception) -> None:
    """``out/failed.json`` with the error, so a study report can say why a cell is missing (a
    later successful run removes it). Best effort: on a full disk the original error
    matters, not this file."""
    if out.is_dir():
        with contextlib.suppress(OSError):
            write_json(
                out / FAILED,
                {
                    "error": type(e).__name__,
                    "message": str(e),
                    "exit_code": 2 if isinstance(e, HnetError) else 1,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )


def log_line(log: IO[bytes], record: dict[str, Any]) -> None:
    """One line of the loss log; a failed write (a full disk) names the file."""
    try:
        log.write((json.dumps(record) + "\n").encode())
    except OSError as e:
        e.filename = e.filename or log.name
        raise


class TrainingLoop:
    """Trains ``jobs`` (set up, restored or evaluated untrained, all at the same task and step)
    to the end. Afterwards :attr:`errors` holds a divergence per job that failed and
    :attr:`failed` those jobs; the caller raises."""

    def __init__(self, jobs: list[Any]) -> None:
        """``jobs``: :class:`hnet.job.run.Job` objects (not imported: run.py drives this loop)."""
        self.jobs = list(jobs)
        self.several = len(jobs) > 1  # messages name the seeds
        self.cores = jobs[0].cores  # the process's one lease
        self.logs: list[IO[bytes]] = []
        self.errors: list[Exception] = []
        self.failed: list[Any] = []

    def run(self) -> None:
        first_job = self.jobs[0]
        task0, step0 = first_job.task, first_job.step
        self.trainer = pack([j.method for j in self.jobs])
        with StopFlag() as stop, contextlib.ExitStack() as stack:
            for job in self.jobs:
                log = stack.enter_context(open(job.out / LOSSES, "a+b", buffering=0))
                log.truncate(job.log_offset)  # drop what was logged after the checkpoint
                log.seek(job.log_offset)
                self.logs.append(log)
            for t in range(task0, first_job.bench.n_tasks):
                self.train_task(t, step0 if t == task0 else 0, stop)
                if not self.jobs:
                    return
                self.finish_task(t, stop)

    def seeds(self) -> str:
        return ",".join(str(j.cfg["seed"]) for j in self.jobs)

    def train_task(self, t: int, first: int, stop: StopFlag) -> None:
        """Steps ``first..iters-1`` of task ``t``; on a stop signal checkpoint and raise."""
        jobs, cfg = self.jobs, self.jobs[0].cfg
        iters, bs = jobs[0].iters[t], cfg["train"]["batch_size"]
        if any(j.iters[t] != iters for j in jobs):
            raise ValueError(f"the packed seeds have different step counts for task {t + 1}")
        schedule, factor, log_every = cfg["train"]["lr_schedule"], None, cfg["train"]["log_every"]
        if first == 0:
            self.trainer.store()
            for job in jobs:
                job.method.begin_task(t)
                job.sampler.start_task(job.bench.tasks[t].n_train)
            self.trainer.refresh()
        t0 = time.perf_counter()
        label = f" seeds {self.seeds()}" if self.several else ""
        self.bar = bar = jobs[0].progress_bar(t, first, iters, label)
        # unread losses: at most log_every steps between two reads, and no more than the task has
        rows = max(1, min(log_every, iters - first))
        window = torch.empty(rows, len(jobs), device=jobs[0].device)
        since = first  # the step of the window's first row
        for step in bar:
            for job in self.jobs:
                if job.startup_seconds is None:
                    job.startup_seconds = process_age()
            self.cores.update(t, step)  # this process's share of the cores (hnet.job.cores)
            for job in self.jobs:  # where hnet status sees it (hnet.job.heartbeat)
                if job.beat is not None:
                    job.beat.at(t, step)
            if schedule != "none" and factor != (new := lr_factor(schedule, step, iters)):
                factor = new
                self.trainer.scale_lr(factor)
            xs, ys = [], []
            for job in self.jobs:
                idx = job.sampler.next(bs).to(job.device)
                job.method.see_rows(t, idx)
                x, y = job.bench.tasks[t].train_batch(idx, job.augment_gen)
                xs.append(x)
                ys.append(y)
            window[step - since].copy_(self.trainer.step_on(t, xs, ys))
            logged = step % log_every == 0 or step == iters - 1
            if logged or stop.signum is not None:  # before anything is logged or saved
                window, values = self.check_finite(window, since, step - since + 1, t)
                since = step + 1
                if not self.jobs:
                    return
            if logged:
                bar.set_postfix(loss=f"{sum(values) / len(values):.4f}", refresh=False)
                for job, log, loss in zip(self.jobs, self.logs, values, strict=True):
                    log_line(log, {"task": t, "step": step, "loss": loss})
                    job.emit("loss", {"task": t, "step": step, "loss": loss})
            if stop.signum is not None and step + 1 < iters:
                self.add_time(time.perf_counter() - t0)
                self.trainer.store()
                for job, log in zip(self.jobs, self.logs, strict=True):
                    job.save_checkpoint(t, step + 1, log.tell())
                stop.interrupt(f"at task {t + 1}, step {step + 1}", self.saved_in())
        self.trainer.store()
        for job in self.jobs:
            job.method.end_task(t)
            job.memory[t] = job.method.memory_bytes()  # what it keeps now (hnet.job.memory)
        self.trainer.refresh()
        self.add_time(time.perf_counter() - t0)

    def saved_in(self) -> str:
        """Where a stopped run's checkpoints are, for its message."""
        if self.several:
            return f"checkpoints of seeds {self.seeds()} saved in their run directories"
        return self.jobs[0].saved_in()

    def add_time(self, seconds: float) -> None:
        """Each job's share of the training time."""
        for job in self.jobs:
            job.train_seconds += seconds / len(self.jobs)

    def check_finite(
        self, window: torch.Tensor, since: int, rows: int, t: int
    ) -> tuple[torch.Tensor, list[float]]:
        """Read the window's first ``rows`` steps (one host sync); a job whose loss was not
        finite at one of them fails alone: failed.json naming that step, its last good
        checkpoint kept, out of the pack. Returns the window of the jobs left and their
        losses at the last of those steps."""
        seen = window[:rows].tolist()
        keep = list(range(len(self.jobs)))
        for n in reversed(range(len(self.jobs))):
            bad = next((i for i, row in enumerate(seen) if not math.isfinite(row[n])), None)
            if bad is not None:
                self.fail(n, seen[bad][n], t, since + bad)
                keep.remove(n)
        if len(keep) < len(seen[-1]):
            window = window[:, keep]
        return window, [seen[-1][n] for n in keep]

    def fail(self, n: int, loss: float, t: int, step: int) -> None:
        job = self.jobs[n]
        cfg = job.cfg
        e = TrainingDiverged(
            f"Training diverged: the loss is {loss} at task {t + 1}, step {step + 1} "
            f"({cfg['method']} on {cfg['benchmark']}, seed {cfg['seed']}). The last good "
            "checkpoint is kept. Lower train.lr or the regularizer strength and run again with "
            "--restart."
        )
        if self.several:
            print(f"seed {cfg['seed']}: {e}", file=sys.stderr)
        record_failure(job.out, e)
        if job.beat is not None:
            job.beat.end(FAILED_STATE)
        self.errors.append(e)
        self.failed.append(job)
        self.trainer.drop(n)
        self.jobs.pop(n)
        self.logs.pop(n).close()

    def finish_task(self, t: int, stop: StopFlag) -> None:
        """Evaluate all tasks after task ``t``, report the row, checkpoint; stop if signalled."""
        for job, log in zip(self.jobs, self.logs, strict=True):
            job.evaluate_row(t)
            kept = job.memory[t]
            record = None if kept is None else memory.task_record(kept, job.exemplar_bytes)
            job.emit("row", {"task": t, "scores": job.R[t].tolist(), "memory": record})
            seed = f"seed {job.cfg['seed']} " if self.several else ""
            self.bar.write(
                f"{seed}task {t + 1}/{job.bench.n_tasks}: score on tasks 1..{t + 1} = "
                + " ".join(f"{v:.2f}" for v in job.R[t, : t + 1])
            )
            job.save_checkpoint(t + 1, 0, log.tell())
        if stop.signum is not None and t + 1 < self.jobs[0].bench.n_tasks:
            stop.interrupt(f"after task {t + 1}", self.saved_in())
