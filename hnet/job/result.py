"""What a finished run leaves behind: metrics.json (the result, the source of truth) and, for a
generative method, its sample grid; plus the scratch run a result's transfer is measured against.

:func:`write_result` is the last step of a job (:meth:`hnet.job.run.Job.run`, and of every seed
of a pack, :mod:`hnet.job.packed`): it gathers the scores, the method's counts, timings,
resources and provenance into one dict (the keys: docs/metrics.md), writes it atomically and
reports the ``done`` event. It reads the job through :class:`FinishedJob`, so this module does
not import the job loop that calls it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from hnet import metrics
from hnet.data import Benchmark
from hnet.errors import HnetError
from hnet.files import write_atomic, write_json
from hnet.job import memory
from hnet.job.environment import git_commit, git_repository, peak_rss_mb, process_age, versions
from hnet.methods.common.base import Method
from hnet.rundir import METRICS, SAMPLES


class FinishedJob(Protocol):
    """What :func:`write_result` reads of a :class:`~hnet.job.run.Job` after its last task."""

    cfg: dict[str, Any]
    out: Path
    device: torch.device
    bench: Benchmark
    method: Method
    R: np.ndarray  # score after training task i (row) on task j (column)
    b: np.ndarray  # score on each task before any training
    TI: np.ndarray  # task-inference accuracy
    memory: list[dict[str, int] | None]  # Method.memory_bytes() after each task
    val: Any  # hnet.job.run.Validation, or None without a validation split
    train_seconds: float
    t_start: float
    started_at: float  # epoch seconds: when the run (its first attempt) started
    finished_at: float | None  # epoch seconds: when training ended, if already known
    startup_seconds: float | None
    resumed: bool
    cores: Any  # hnet.job.cores.CoreShare (its thread-count changes), None if never trained
    emit: Callable[[str, dict[str, Any]], None]


def task_inference(TI: np.ndarray) -> dict[str, Any]:
    """Task-inference accuracy (%): the matrix (rows: after training task i, columns: task j,
    only over learned tasks j ≤ i) and its final-row mean."""
    if np.isnan(TI).all():
        return {}
    return {
        "task_inference_matrix": np.where(np.isnan(TI), None, TI).tolist(),
        "task_inference_final": float(np.nanmean(TI[-1])),
    }


Transfer = dict[str, np.ndarray]
"""The transfer metrics a job adds: metric name (:data:`hnet.metrics.TRANSFER_CONTROLS`) → the
diagonal of its control's matrix."""


def scratch_reference(path: str | Path, cfg: dict[str, Any]) -> Transfer:
    """The diagonal of a from-scratch control's run (``scratch``, or ``hnet_scratch`` of the same
    size), checked to be the same benchmark/scenario/seed, under the metric it gives."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.exists():
        raise HnetError(
            f"--scratch {path}: no metrics.json there; run the scratch job first "
            f"(hnet train -m scratch ..., or -m hnet_scratch for a hypernetwork)."
        )
    ref = json.loads(file.read_text())
    control = ref.get("method")
    if control not in metrics.TRANSFER_CONTROLS:
        raise HnetError(
            f"--scratch {file}: that is a {control!r} run, not one of the from-scratch controls "
            f"({', '.join(metrics.TRANSFER_CONTROLS)})."
        )
    keys = ("benchmark", "scenario", "seed") + (("size",) if control == "hnet_scratch" else ())
    for key in keys:
        if ref.get(key) != cfg[key]:
            raise HnetError(
                f"--scratch {file}: its {key} is {ref.get(key)!r}, this job's is "
                f"{cfg[key]!r}; transfer needs the matching {control} run."
            )
    return {metrics.TRANSFER_CONTROLS[control]: np.diag(np.array(ref["acc_matrix"], dtype=float))}


def write_samples(job: FinishedJob) -> None:
    """A generative method's sample grid after the last task, for the report (no torch
    needed to read it); written before metrics.json, so a finished run has it."""
    grid = job.method.sample_grid()
    if grid is not None:
        write_atomic(job.out / SAMPLES, lambda f: np.savez(f, **grid))


def shared_threads(job: FinishedJob) -> dict[str, Any]:
    """Where sharing the cores with other jobs changed the thread count (hnet.job.cores):
    ``threads_shared`` lists ``[task, step, threads]`` (absent when it never changed)."""
    changes = job.cores.changes if job.cores is not None else []
    return {"threads_shared": changes} if changes else {}


def write_result(job: FinishedJob, r_scratch: Transfer | None) -> dict[str, Any]:
    """The result of ``job``, written to ``out/metrics.json`` (after the sample grid) and
    reported as the ``done`` event; ``r_scratch``: see :func:`scratch_reference`. Metrics whose
    definition does not hold in the scenario are ``None``, their reasons in ``not_applicable``."""
    cfg, device = job.cfg, job.device
    na = metrics.not_applicable(cfg["scenario"], validation=job.val is not None)
    transfer = {k: metrics.transfer_vs_scratch(job.R, d) for k, d in (r_scratch or {}).items()}
    result: dict[str, Any] = {
        "benchmark": cfg["benchmark"],
        "scenario": cfg["scenario"],
        "method": cfg["method"],
        "size": cfg["size"],
        "seed": cfg["seed"],
        "score": "neg_mse" if job.bench.kind == "regression" else "accuracy_percent",
        "acc_matrix": job.R.tolist(),
        "acc_init": job.b.tolist(),
        **metrics.all_metrics(job.R, job.b, scenario=cfg["scenario"]),
        **transfer,
        **({"not_applicable": na} if na else {}),
        **task_inference(job.TI),
        **(job.val.results(cfg["scenario"]) if job.val is not None else {}),
        **job.method.param_counts(),
        **memory.results(job.memory, job.bench),
        **job.method.extra_results(),
        "train_seconds": job.train_seconds,
        "wall_seconds": time.perf_counter() - job.t_start,
        "startup_seconds": job.startup_seconds,
        "process_seconds": process_age(),
        "started_at": job.started_at,
        "finished_at": job.finished_at if job.finished_at is not None else time.time(),
        "peak_rss_mb": peak_rss_mb(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        **shared_threads(job),
        "resumed": job.resumed,
        "config": cfg,
        "versions": versions(),
        "git_commit": git_commit(),
        "git_repository": git_repository(),
        "data_digest": job.bench.digest(),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    write_samples(job)
    write_json(job.out / METRICS, result)
    job.emit("done", result)
    return result
