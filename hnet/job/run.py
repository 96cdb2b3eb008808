"""One job: a resolved config in, a run directory out.

    out/config.json     the resolved config (written first, so a run dir always says what it is)
    out/losses.jsonl    training loss every ``train.log_every`` steps, one JSON object per line
    out/state/ckpt.pt   checkpoint after every task and on SIGTERM (resume point); the one
                        before it is kept as state/ckpt.prev.pt
    out/metrics.json    the result (source of truth), written atomically at the very end
                        (:mod:`hnet.job.result`)

Evaluation protocol (docs/metrics.md): before any training every task is evaluated (b); after
training task i every task j is evaluated (row i of R), so forward transfer and forgetting are
computed from stored matrices afterwards.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hnet import metrics, rng
from hnet.config import run_key
from hnet.data import BENCHMARKS, Benchmark, load_benchmark
from hnet.errors import DataError, JobInterrupted
from hnet.fast.cpu import tune_allocator
from hnet.files import write_json
from hnet.job import memory
from hnet.job import state as ckpt
from hnet.job.cores import CoreShare, shared_cores
from hnet.job.environment import apply_threads, resolve_device
from hnet.job.heartbeat import Beats, Heartbeat
from hnet.job.integrity import prepare_run
from hnet.job.loop import TrainingLoop, record_failure
from hnet.job.result import Transfer, scratch_reference, write_result
from hnet.job.sampler import Sampler
from hnet.methods import METHODS
from hnet.rundir import CKPT, CKPT_PREV, CONFIG, FAILED, LOSSES, METRICS
from hnet.steps import task_iters

Listener = Callable[[str, dict[str, Any]], None]


def check_task_sizes(cfg: dict[str, Any], bench: Benchmark) -> None:
    """``train.iters_per_task`` was derived from the sizes the benchmark declares; refuse data
    of other sizes (only possible with ``data.check_counts: false``) instead of silently
    training for a different number of epochs."""
    if not cfg["train"].get("iters_per_task"):
        return
    declared = BENCHMARKS.get(cfg["benchmark"]).task_sizes(cfg["data"])
    # epochs count a task's whole training set, validation rows held out of it included
    loaded = [t.n_train + (0 if t.y_val is None else len(t.y_val)) for t in bench.tasks]
    if declared != loaded:
        raise DataError(
            f"train.epochs={cfg['train']['epochs']} counts steps from the real task sizes "
            f"{declared}, but the loaded data has {loaded} training examples per task. With "
            "other data (e.g. data.check_counts=false) train by steps: --set train.epochs=0 "
            "--set train.iters=N."
        )


def run_job(
    cfg: dict[str, Any],
    out: str | Path,
    progress: bool | None = None,
    scratch: str | Path | None = None,
    on_event: Listener | None = None,
) -> dict[str, Any]:
    """Train ``cfg``'s method on its benchmark into run directory ``out``; return the metrics.

    ``out`` is checked first (:mod:`hnet.job.integrity`): a finished run of this config is
    returned as it is, an unfinished one resumes from its newest intact checkpoint, damaged
    files are recovered exactly or refused, a run of another config is refused. ``scratch``: a
    matching ``scratch`` run (dir or metrics.json) adds ``transfer_vs_scratch``.
    ``on_event(kind, data)`` receives ``loss`` / ``row`` / ``done`` events (the MLflow mirror
    listens here).

    A job that fails (anything but an interruption) leaves ``out/failed.json`` with the error, so
    a study report can say why a cell is missing; a later successful run removes it.
    """
    out = Path(out)
    try:
        r_scratch = scratch_reference(scratch, cfg) if scratch is not None else None
        finished, checkpoint = prepare_run(out, cfg)
        if finished is not None:
            return finished
        result = Job(cfg, out, progress, on_event, checkpoint).run(r_scratch)
    except JobInterrupted:
        raise
    except Exception as e:
        record_failure(out, e)
        raise
    (out / FAILED).unlink(missing_ok=True)
    return result


class Validation:
    """Scores on the validation split (data.val_fraction > 0): V and bv, the counterparts of R
    and b, checkpointed with them and written to metrics.json as ``val_acc_matrix``,
    ``val_acc_init`` and the ``val_*`` metrics. Without a split none of this exists, so
    checkpoints and results stay exactly as they were."""

    def __init__(self, T: int) -> None:
        self.V, self.bv = np.full((T, T), np.nan), np.full(T, np.nan)

    def record(self, row: int | None, task: int, score: float) -> None:
        (self.bv if row is None else self.V[row])[task] = score

    def state(self) -> dict[str, torch.Tensor]:
        return {"V": torch.from_numpy(self.V), "bv": torch.from_numpy(self.bv)}

    def load(self, state: dict[str, Any]) -> None:
        self.V[:], self.bv[:] = state["V"].cpu().numpy(), state["bv"].cpu().numpy()

    def results(self, scenario: str) -> dict[str, Any]:
        return {
            "val_acc_matrix": self.V.tolist(),
            "val_acc_init": self.bv.tolist(),
            **metrics.validation_metrics(self.V, self.bv, scenario),
        }


class Job:
    """The steps of one run: set up, restore or evaluate the untrained model, train every task
    (checkpointing at task ends and on a stop signal), then write the result."""

    def __init__(
        self,
        cfg: dict[str, Any],
        out: Path,
        progress: bool | None,
        on_event: Listener | None,
        resume_from: Path | None = None,
    ) -> None:
        """``resume_from``: the checkpoint :func:`~hnet.job.integrity.prepare_run` verified
        (None: start afresh)."""
        self.cfg, self.out, self.progress = cfg, out, progress
        self.emit = on_event or (lambda kind, data: None)
        self.t_start = time.perf_counter()
        # Wall-clock times of the run (epoch seconds, metrics.json ``started_at``/``finished_at``,
        # the MLflow run's start and end): the first attempt's start survives resumes through
        # the checkpoint; a result recomputed from the final checkpoint keeps the time that
        # checkpoint was written as its end.
        self.started_at, self.finished_at = time.time(), None
        self.ckpt_path, self.resume_from = out / CKPT, resume_from
        self.startup_seconds: float | None = None  # process age at the first step: fixed cost
        self.resumed = False
        self.cores: CoreShare | None = None  # this process's lease while it trains
        self.beat: Heartbeat | None = None  # heartbeat.json while it trains (hnet status)

    # -- set-up ----------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / CONFIG, cfg)
        apply_threads(cfg["threads"])
        tune_allocator()
        self.device = resolve_device(cfg["device"])
        rng.seed_globals(cfg["seed"])
        self.bench = load_benchmark(cfg["benchmark"], dict(cfg["data"]), cfg["seed"])
        check_task_sizes(cfg, self.bench)
        self.bench = self.bench.to(self.device)
        self.method = METHODS.get(cfg["method"])(cfg, self.bench, self.device)
        self.sampler = Sampler(cfg["seed"])
        # Crops and flips of augmented training batches: a stream of its own (never drawn from
        # for benchmarks without augmentation), checkpointed with the sampler.
        self.augment_gen = rng.generator(cfg["seed"], "augment")
        T = self.bench.n_tasks
        self.iters = task_iters(cfg, T)
        self.R = np.full((T, T), np.nan)
        self.TI = np.full((T, T), np.nan)  # task-inference accuracy (CL2/CL3 inference)
        self.b = np.full(T, np.nan)
        # per task: Method.memory_bytes() after its end_task (hnet.job.memory), checkpointed
        self.memory: list[dict[str, int] | None] = [None] * T
        self.exemplar_bytes = memory.exemplar_bytes(self.bench)
        self.val = Validation(T) if self.bench.has_validation else None
        self.task, self.step, self.train_seconds, self.log_offset = 0, 0, 0.0, 0

    def restore(self) -> bool:
        """Continue from the verified checkpoint if there is one; returns whether it did."""
        state = None if self.resume_from is None else ckpt.load(self.resume_from, self.device)
        if state is None:
            return False
        self.method.load_state_dict(state["method"])
        self.R[:], self.b[:], self.TI[:] = (state[k].cpu().numpy() for k in ("R", "b", "TI"))
        if self.val is not None:
            self.val.load(state)
        self.task, self.step = state["task"], state["step"]
        if "memory" in state:  # checkpoints from before the record have none
            self.memory = list(state["memory"])
        self.train_seconds, self.log_offset = state["train_seconds"], state["log_offset"]
        self.sampler.load(state["sampler"])
        self.started_at = state.get("started_at", self.started_at)  # older checkpoints: none
        if "augment" in state:  # checkpoints from before augmentation existed have none
            self.augment_gen.set_state(state["augment"].cpu())
        ckpt.set_rng_state(state["rng"])
        if self.task < self.bench.n_tasks:
            where = f"at task {self.task + 1}, step {self.step}"
            print(f"resuming {self.out} {where} from {self.resume_from.name}", file=sys.stderr)
        else:
            print(f"recomputing {self.out / METRICS} from the final checkpoint", file=sys.stderr)
            self.finished_at = state.get("saved_at")
        return True

    def save_checkpoint(self, task: int, step: int, log_offset: int) -> None:
        """Everything needed to continue exactly, the run's identity and a copy of the loss log
        so far (both checked before a resume); the previous checkpoint becomes ckpt.prev.pt."""
        log = (self.out / LOSSES).read_bytes()[:log_offset]
        ckpt.save(
            self.ckpt_path,
            {
                "run_key": run_key(self.cfg),
                "config": json.dumps(self.cfg),
                "log": torch.from_numpy(np.frombuffer(log, dtype=np.uint8).copy()),
                "task": task,
                "step": step,
                "method": self.method.state_dict(),
                "R": torch.from_numpy(self.R),
                "b": torch.from_numpy(self.b),
                "TI": torch.from_numpy(self.TI),
                "memory": list(self.memory),
                "train_seconds": self.train_seconds,
                "sampler": self.sampler.state(),
                "augment": self.augment_gen.get_state(),
                "rng": ckpt.rng_state(),
                "log_offset": log_offset,
                "started_at": self.started_at,
                "saved_at": time.time(),
                **(self.val.state() if self.val is not None else {}),
            },
            keep=self.out / CKPT_PREV,
        )
        if self.beat is not None:
            self.beat.checkpointed(task, step)

    # -- evaluation ------------------------------------------------------------------------
    def evaluate_row(self, row: int | None) -> None:
        """Score every task: before training (``row`` None → b) or after task ``row``."""
        for j in range(self.bench.n_tasks):
            score, ti = self.method.evaluate(j)
            (self.b if row is None else self.R[row])[j] = score
            if ti is not None and row is not None and j <= row:  # learned tasks only
                self.TI[row, j] = ti
            if self.val is not None:  # the validation split, scored the same way
                self.val.record(row, j, self.method.evaluate(j, split="val")[0])

    # -- training --------------------------------------------------------------------------
    def run(self, r_scratch: Transfer | None) -> dict[str, Any]:
        with Beats([self.out]) as (self.beat,):
            self.setup()
            with shared_cores(self.cfg["threads"]) as self.cores:
                self.resumed = self.restore()
                self.begin_beat()
                if not self.resumed:
                    self.evaluate_row(None)
                loop = TrainingLoop([self])
                loop.run()
                if loop.errors:
                    raise loop.errors[0]
            return write_result(self, r_scratch)

    def begin_beat(self) -> None:
        """Set up and restored: the heartbeat learns the step counts and where it starts."""
        if self.beat is not None:
            self.beat.begin(self.iters, self.task, self.step, self.resumed)

    def saved_in(self) -> str:
        """Where a stopped job's checkpoint is, for its message."""
        return f"checkpoint saved in {self.ckpt_path.parent}"

    def progress_bar(self, t: int, first: int, iters: int, label: str = "") -> Any:
        """Steps ``first..iters-1`` of task ``t`` with a progress bar (``label`` is appended to
        its description: a pack of seeds names them)."""
        return tqdm(
            range(first, iters),
            total=iters,
            initial=first,
            desc=f"task {t + 1}/{self.bench.n_tasks}{label}",
            leave=True,
            dynamic_ncols=True,
            disable=None if self.progress is None else not self.progress,  # None: TTY only
        )
