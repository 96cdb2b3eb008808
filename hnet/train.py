"""One job: a resolved config in, a run directory out.

    out/config.json     the resolved config (written first, so a run dir always says what it is)
    out/losses.jsonl    training loss every ``train.log_every`` steps, one JSON object per line
    out/metrics.json    the result (source of truth), written atomically at the very end

Evaluation protocol (METHOD.md §5): before any training every task is evaluated (b); after
training task i every task j is evaluated (row i of R), so forward transfer and forgetting can be
computed from stored matrices afterwards.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hnet import checkpoint, metrics
from hnet.checkpoint import Sampler
from hnet.data import load_benchmark
from hnet.errors import HnetError, JobInterrupted
from hnet.methods import METHODS
from hnet.runinfo import (
    git_commit,
    peak_rss_mb,
    process_age,
    resolve_device,
    seed_everything,
    versions,
    write_json_atomic,
)


class TrainingDiverged(HnetError):
    """The loss became NaN or infinite."""


class StopFlag:
    """Turns SIGTERM (cluster preemption) and SIGINT (Ctrl-C) into a flag the loop checks after
    every step, so the job stops at a safe point with a checkpoint instead of dying mid-write."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def check_existing(out: Path, cfg: dict[str, Any]) -> bool:
    """True if ``out`` holds a finished run of exactly this config; refuse a different config."""
    cfg_file = out / "config.json"
    if not cfg_file.exists():
        return False
    old = json.loads(cfg_file.read_text())
    if old != json.loads(json.dumps(cfg)):
        changed = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
        raise HnetError(
            f"{out} holds a run with a different config (differs in: {', '.join(changed)}). "
            "Results are never mixed or overwritten: choose another --out, or pass --restart "
            "to move the old run aside and start over."
        )
    return (out / "metrics.json").exists()


def task_inference(TI: np.ndarray) -> dict[str, Any]:
    """Task-inference accuracy (%): the matrix (rows: after training task i, columns: task j,
    only over learned tasks j ≤ i) and its final-row mean."""
    if np.isnan(TI).all():
        return {}
    return {
        "task_inference_matrix": np.where(np.isnan(TI), None, TI).tolist(),
        "task_inference_final": float(np.nanmean(TI[-1])),
    }


def scratch_reference(path: str | Path, cfg: dict[str, Any]) -> np.ndarray:
    """Diagonal of a ``scratch`` run's matrix, checked to be the same benchmark/scenario/seed."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.exists():
        raise HnetError(
            f"--scratch {path}: no metrics.json there; run the scratch job first "
            f"(hnet train -m scratch ...)."
        )
    ref = json.loads(file.read_text())
    for key in ("benchmark", "scenario", "seed"):
        if ref.get(key) != cfg[key]:
            raise HnetError(
                f"--scratch {file}: its {key} is {ref.get(key)!r}, this job's is "
                f"{cfg[key]!r}; transfer needs the matching scratch run."
            )
    if ref.get("method") != "scratch":
        raise HnetError(f"--scratch {file}: that is a {ref.get('method')!r} run, not scratch.")
    return np.diag(np.array(ref["acc_matrix"], dtype=float))


FAILED = "failed.json"


def run_job(
    cfg: dict[str, Any],
    out: str | Path,
    progress: bool | None = None,
    scratch: str | Path | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg``'s method on its benchmark into run directory ``out``; return the metrics.

    Resumes from ``out/state/ckpt.pt`` when present (same config only). ``scratch``: a matching
    ``scratch`` run (dir or metrics.json) adds ``transfer_vs_scratch``. ``on_event(kind, data)``
    receives ``loss`` / ``row`` / ``done`` events (the MLflow mirror listens here).

    A job that fails (anything but an interruption) leaves ``out/failed.json`` with the error, so
    a study report can say why a cell is missing; a later successful run removes it.
    """
    try:
        result = _run_job(cfg, Path(out), progress, scratch, on_event)
    except JobInterrupted:
        raise
    except Exception as e:
        if Path(out).is_dir():
            write_json_atomic(
                Path(out) / FAILED,
                {
                    "error": type(e).__name__,
                    "message": str(e),
                    "exit_code": 2 if isinstance(e, HnetError) else 1,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        raise
    (Path(out) / FAILED).unlink(missing_ok=True)
    return result


def _run_job(
    cfg: dict[str, Any],
    out: str | Path,
    progress: bool | None = None,
    scratch: str | Path | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    r_scratch = scratch_reference(scratch, cfg) if scratch is not None else None
    out = Path(out)
    if check_existing(out, cfg):
        return json.loads((out / "metrics.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", cfg)
    emit = on_event or (lambda kind, data: None)
    t_start = time.perf_counter()

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    device = resolve_device(cfg["device"])
    seed_everything(cfg["seed"])
    bench = load_benchmark(cfg["benchmark"], dict(cfg["data"]), cfg["seed"]).to(device)
    method = METHODS.get(cfg["method"])(cfg, bench, device)
    n_tasks, train = bench.n_tasks, cfg["train"]
    sampler = Sampler(cfg["seed"])
    R = np.full((n_tasks, n_tasks), np.nan)
    TI = np.full((n_tasks, n_tasks), np.nan)  # task-inference accuracy (CL2/CL3 inference)
    b = np.full(n_tasks, np.nan)
    ckpt_path = out / "state" / "ckpt.pt"
    startup_seconds = None  # process age at the first training step: the job's fixed cost

    def evaluate_row(row: int | None) -> None:
        for j in range(n_tasks):
            score, ti = method.evaluate(j)
            (b if row is None else R[row])[j] = score
            if ti is not None and row is not None and j <= row:  # learned tasks only
                TI[row, j] = ti

    def save_checkpoint(task: int, step: int, log_offset: int) -> None:
        checkpoint.save(
            ckpt_path,
            {
                "task": task,
                "step": step,
                "method": method.state_dict(),
                "R": torch.from_numpy(R),
                "b": torch.from_numpy(b),
                "TI": torch.from_numpy(TI),
                "train_seconds": train_seconds,
                "sampler": sampler.state(),
                "rng": checkpoint.rng_state(),
                "log_offset": log_offset,
            },
        )

    state = checkpoint.load(ckpt_path, device)
    if state is None:
        start_task, start_step, train_seconds, log_offset = 0, 0, 0.0, 0
        evaluate_row(None)
    else:
        method.load_state_dict(state["method"])
        R[:], b[:], TI[:] = (state[k].cpu().numpy() for k in ("R", "b", "TI"))
        start_task, start_step = state["task"], state["step"]
        train_seconds, log_offset = state["train_seconds"], state["log_offset"]
        sampler.load(state["sampler"])
        checkpoint.set_rng_state(state["rng"])
        print(f"resuming {out} at task {start_task + 1}, step {start_step}", file=sys.stderr)

    with StopFlag() as stop, open(out / "losses.jsonl", "a+b", buffering=0) as log:
        log.truncate(log_offset)  # drop what was logged after the checkpoint
        log.seek(log_offset)
        for t in range(start_task, n_tasks):
            task = bench.tasks[t]
            first = start_step if t == start_task else 0
            if first == 0:
                method.begin_task(t)
                sampler.start_task(task.n_train)
            t0 = time.perf_counter()
            bar = tqdm(
                range(first, train["iters"]),
                total=train["iters"],
                initial=first,
                desc=f"task {t + 1}/{n_tasks}",
                leave=True,
                dynamic_ncols=True,
                disable=None if progress is None else not progress,
            )  # None: TTY only
            for step in bar:
                if startup_seconds is None:
                    startup_seconds = process_age()
                x, y = task.train_batch(sampler.next(train["batch_size"]).to(device))
                loss = float(method.train_step(t, x, y))
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"Training diverged: the loss is {loss} at task {t + 1}, step {step + 1} "
                        f"({cfg['method']} on {cfg['benchmark']}). The last good checkpoint "
                        f"is kept. Lower train.lr or the regularizer strength and run again "
                        f"with --restart."
                    )
                if step % train["log_every"] == 0 or step == train["iters"] - 1:
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                    log.write((json.dumps({"task": t, "step": step, "loss": loss}) + "\n").encode())
                    emit("loss", {"task": t, "step": step, "loss": loss})
                if stop.signum is not None and step + 1 < train["iters"]:
                    train_seconds += time.perf_counter() - t0
                    save_checkpoint(t, step + 1, log.tell())
                    raise JobInterrupted(
                        f"Stopped by signal {stop.signum} at task {t + 1}, step {step + 1}; "
                        f"checkpoint saved in {ckpt_path.parent}. Run the same command to "
                        "resume.",
                        stop.signum,
                    )
            method.end_task(t)
            train_seconds += time.perf_counter() - t0
            evaluate_row(t)
            emit("row", {"task": t, "scores": R[t].tolist()})
            bar.write(
                f"task {t + 1}/{n_tasks}: score on tasks 1..{t + 1} = "
                + " ".join(f"{v:.2f}" for v in R[t, : t + 1])
            )
            save_checkpoint(t + 1, 0, log.tell())
            if stop.signum is not None and t + 1 < n_tasks:
                raise JobInterrupted(
                    f"Stopped by signal {stop.signum} after task {t + 1}; checkpoint saved in "
                    f"{ckpt_path.parent}. Run the same command to resume.",
                    stop.signum,
                )

    result: dict[str, Any] = {
        "benchmark": cfg["benchmark"],
        "scenario": cfg["scenario"],
        "method": cfg["method"],
        "size": cfg["size"],
        "seed": cfg["seed"],
        "score": "neg_mse" if bench.kind == "regression" else "accuracy_percent",
        "acc_matrix": R.tolist(),
        "acc_init": b.tolist(),
        **metrics.all_metrics(R, b, r_scratch),
        **task_inference(TI),
        **method.param_counts(),
        **method.extra_results(),
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - t_start,
        "startup_seconds": startup_seconds,
        "process_seconds": process_age(),
        "peak_rss_mb": peak_rss_mb(),
        "device": str(device),
        "resumed": state is not None,
        "config": cfg,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    write_json_atomic(out / "metrics.json", result)
    emit("done", result)
    return result
