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
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hnet import metrics
from hnet.data import load_benchmark
from hnet.errors import HnetError
from hnet.methods import METHODS
from hnet.runinfo import (
    git_commit,
    peak_rss_mb,
    resolve_device,
    seed_everything,
    versions,
    write_json_atomic,
)


class TrainingDiverged(HnetError):
    """The loss became NaN or infinite."""


def batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """Index batches for ``steps`` steps: reshuffled epochs, order fixed by ``generator``."""
    perm, pos = torch.randperm(n, generator=generator), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=generator), 0
        yield perm[pos : pos + batch_size]
        pos += batch_size


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


def run_job(
    cfg: dict[str, Any],
    out: str | Path,
    progress: bool | None = None,
    scratch: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``cfg``'s method on its benchmark, write the run directory, return the metrics.

    ``scratch``: a matching ``scratch`` run (dir or metrics.json) → ``transfer_vs_scratch``."""
    r_scratch = scratch_reference(scratch, cfg) if scratch is not None else None
    out = Path(out)
    if check_existing(out, cfg):
        return json.loads((out / "metrics.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", cfg)
    t_start = time.perf_counter()

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    device = resolve_device(cfg["device"])
    seed_everything(cfg["seed"])
    data_cfg = dict(cfg["data"])
    bench = load_benchmark(cfg["benchmark"], data_cfg, cfg["seed"]).to(device)
    method = METHODS.get(cfg["method"])(cfg, bench, device)
    n_tasks, train = bench.n_tasks, cfg["train"]
    order = torch.Generator().manual_seed(cfg["seed"])

    def evaluate_all(row: int | None) -> None:
        for j in range(n_tasks):
            score, ti = method.evaluate(j)
            (b if row is None else R[row])[j] = score
            if ti is not None and row is not None and j <= row:  # learned tasks only
                TI[row, j] = ti

    b = np.full(n_tasks, np.nan)
    R = np.full((n_tasks, n_tasks), np.nan)
    TI = np.full((n_tasks, n_tasks), np.nan)  # task-inference accuracy (CL2/CL3 inference)
    evaluate_all(None)
    train_seconds = 0.0
    with open(out / "losses.jsonl", "w") as log:
        for t in range(n_tasks):
            t0 = time.perf_counter()
            method.begin_task(t)
            task = bench.tasks[t]
            bar = tqdm(
                batches(
                    task.n_train, min(train["batch_size"], task.n_train), train["iters"], order
                ),
                total=train["iters"],
                desc=f"task {t + 1}/{n_tasks}",
                leave=True,
                dynamic_ncols=True,
                disable=None if progress is None else not progress,  # None: only on a TTY
            )
            for step, idx in enumerate(bar):
                x, y = task.train_batch(idx.to(device))
                loss = float(method.train_step(t, x, y))
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"Training diverged: the loss is {loss} at task {t + 1}, step {step + 1} "
                        f"({cfg['method']} on {cfg['benchmark']}). Lower train.lr or the "
                        "regularizer strength and run again."
                    )
                if step % train["log_every"] == 0 or step == train["iters"] - 1:
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                    log.write(json.dumps({"task": t, "step": step, "loss": loss}) + "\n")
            method.end_task(t)
            train_seconds += time.perf_counter() - t0
            evaluate_all(t)
            bar.write(
                f"task {t + 1}/{n_tasks}: score on tasks 1..{t + 1} = "
                + " ".join(f"{v:.2f}" for v in R[t, : t + 1])
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
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "device": str(device),
        "config": cfg,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    write_json_atomic(out / "metrics.json", result)
    return result
