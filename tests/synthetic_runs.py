"""Write synthetic but schema-valid run directories, for ``hnet report`` at the scale of a study.

Each cell gets ``runs/<benchmark>/<scenario>/<method>/<size>/seed<k>/metrics.json`` with every
key a real ``hnet train`` writes (the metrics of a plausible accuracy matrix computed by
``hnet.metrics``, parameter counts and task embeddings for hypernetworks, timings, the resolved
config, versions), and ``grid.json`` lists every cell as a study's grid does. Nothing is
random beyond a generator seeded from the cell, so the same arguments write the same files.

Used by ``tests/integration/test_report.py`` and, from the command line, to measure the report
on a paper-sized study (docs/development.md)::

    python tests/synthetic_runs.py OUT --cells 1500
    python tests/synthetic_runs.py OUT --cells 3000 --unfinished   # for hnet status
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hnet import metrics

#: benchmark → number of tasks (the paper's benchmarks; PermutedMNIST at its 10-task setting)
BENCHMARKS = {
    "split_mnist": 5,
    "permuted_mnist": 10,
    "split_fmnist": 5,
    "split_cifar10_100": 6,
    "split_digits": 5,
}
SCENARIOS = ("cl1", "cl2", "cl3")
BASELINES = ("finetune", "ewc", "online_ewc", "si", "mas", "replay", "joint", "scratch")
HNET_SIZES = ("official", "cr0.05", "cr0.1", "cr0.5", "cr1.0")
SEEDS = tuple(range(10))
DROP = {"hnet": 0.5, "finetune": 20.0, "ewc": 8.0, "online_ewc": 7.0, "si": 9.0, "mas": 9.5}
DROP |= {"replay": 4.0, "joint": 0.2, "scratch": 0.0}
#: stored inputs' worth of memory per task (hnet: its targets, EWC: Fisher and anchor per task …)
MEMORY_PER_TASK = {"hnet": 470.0, "ewc": 4900.0, "online_ewc": 980.0, "si": 1470.0}
MEMORY_PER_TASK |= {"mas": 980.0, "replay": 204.0, "joint": 12000.0}


def cells(
    benchmarks: Sequence[str] = tuple(BENCHMARKS),
    scenarios: Sequence[str] = SCENARIOS,
    baselines: Sequence[str] = BASELINES,
    sizes: Sequence[str] = HNET_SIZES,
    seeds: Sequence[int] = SEEDS,
) -> list[tuple[str, str, str, str, int]]:
    """(benchmark, scenario, method, size, seed) in grid order; baselines have size ``none``."""
    groups = [("hnet", s) for s in sizes] + [(m, "none") for m in baselines]
    return [
        (b, sc, m, z, k)
        for b, sc, (m, z), k in itertools.product(benchmarks, scenarios, groups, seeds)
    ]


def run_dir(bench: str, scen: str, method: str, size: str, seed: int) -> str:
    return f"runs/{bench}/{scen}/{method}/{size}/seed{seed}"


def metrics_json(bench: str, scen: str, method: str, size: str, seed: int) -> dict:
    """A metrics.json as ``hnet train`` writes it, for a plausible T×T accuracy matrix."""
    T = BENCHMARKS.get(bench, 5)
    rng = np.random.default_rng(zlib.crc32(f"{bench}/{scen}/{method}/{size}/{seed}".encode()))
    drop = DROP.get(method, 5.0) + {"cr0.05": 3.0, "cr0.1": 2.0}.get(size, 0.0)
    drop *= {"cl1": 1.0, "cl2": 1.5, "cl3": 3.0}.get(scen, 1.0)
    R = np.array(
        [
            [
                max(0.0, 95 - drop * (i - j) + rng.normal(0, 0.5)) if j <= i else 10 + rng.random()
                for j in range(T)
            ]
            for i in range(T)
        ]
    )
    if method == "scratch":  # every task alone: no forgetting, no transfer
        R = np.tril(np.tile(np.diag(R), (T, 1))) + np.triu(R, 1)
    b = 10 + rng.random(T)
    m = {
        "benchmark": bench,
        "scenario": scen,
        "method": method,
        "size": size if method == "hnet" else "official",
        "seed": seed,
        "score": "accuracy_percent",
        "acc_matrix": R.tolist(),
        "acc_init": b.tolist(),
        **metrics.all_metrics(R, b),
    }
    ratio = float(size[2:]) if size.startswith("cr") else 0.8
    if method == "hnet":
        m |= {
            "n_params_hnet": int(ratio * 478_410),
            "n_params_target": 478_410,
            "compression_ratio": ratio,
            "hnet_arch": {"chunked": True, "chunk_size": 300, "chunk_emb": 16, "task_emb": 16},
            "task_embeddings": rng.normal(size=(T, 16)).tolist(),
        }
    per_task = MEMORY_PER_TASK.get(method, 0.0) * (1.0 if method != "hnet" else 0.5 + ratio)
    exemplars = per_task * (1 if method in ("online_ewc", "si", "mas") else T)
    m |= {"memory_exemplars": exemplars, "memory_mb": exemplars * 784 / 2**20}
    seconds = 60.0 + 10 * T + rng.random()
    m |= {
        "train_seconds": seconds,
        "wall_seconds": seconds + 3.0,
        "startup_seconds": 2.5,
        "process_seconds": seconds + 2.0,
        "peak_rss_mb": 900.0 + rng.random(),
        "device": "cpu",
        "resumed": False,
        "config": {
            "benchmark": bench,
            "scenario": scen,
            "method": method,
            "size": size,
            "seed": seed,
            "device": "auto",
            "threads": 1,
            "data": {"dir": None, "download": True, "val_fraction": 0.0},
            "target": {"kind": "mlp", "hidden": [400, 400], "activation": "relu"},
            "train": {"iters": 4000, "batch_size": 128, "lr": 0.001, "adam_betas": [0.9, 0.999]},
        },
        "versions": {"python": "3.11.7", "hnet": "0.1.0", "torch": "2.14.1", "numpy": "2.4.6"},
        "git_commit": "0" * 40,
    }
    return m


def write_study(root: Path, n_cells: int | None = None, study: str = "synthetic", **axes) -> list:
    """``root/runs/...`` and ``root/grid.json`` for the first ``n_cells`` cells (all if None) of
    :func:`cells` (``axes``: its keyword arguments). Returns the cells written."""
    chosen = cells(**axes)
    if n_cells is not None:
        if n_cells > len(chosen):
            raise ValueError(f"{n_cells} cells asked for, the axes give {len(chosen)}")
        chosen = chosen[:n_cells]
    for cell in chosen:
        d = Path(root) / run_dir(*cell)
        d.mkdir(parents=True, exist_ok=True)
        (d / "metrics.json").write_text(json.dumps(metrics_json(*cell), indent=2) + "\n")
    grid = {
        "study": study,
        "cells": [
            dict(benchmark=b, scenario=s, method=m, size=z, seed=k, run_dir=run_dir(b, s, m, z, k))
            for b, s, m, z, k in chosen
        ],
    }
    (Path(root) / "grid.json").write_text(json.dumps(grid))
    return chosen


def heartbeat(
    state: str = "running",
    task: int = 0,
    step: int = 0,
    iters: Sequence[int] = (100,) * 5,
    checkpoint: tuple[int, int] | None = None,
    age: float = 1.0,
    host: str = "node-elsewhere",
    pid: int = 4711,
    started_ago: float = 60.0,
    now: float | None = None,
) -> dict:
    """A heartbeat.json record as a training process writes it (hnet.job.heartbeat); by default
    a fresh one from another host, which a reader believes."""
    now = time.time() if now is None else now
    return {
        "state": state,
        "host": host,
        "pid": pid,
        "boot_ticks": None,
        "started": now - started_ago,
        "updated": now - age,
        "beat_seconds": 15.0,
        "iters": list(iters),
        "start": [0, 0],
        "checkpoint": list(checkpoint) if checkpoint else None,
        "task": task,
        "step": step,
    }


def write_unfinished(d: Path, state: str, rng: np.random.Generator, iters: int = 4000) -> None:
    """A run directory left as a ``running``, ``interrupted`` or ``failed`` job leaves it (no
    files for ``not started``): config, a loss log, a checkpoint stand-in, a heartbeat."""
    if state == "not started":
        return
    d.mkdir(parents=True, exist_ok=True)
    T = 5
    task, step = int(rng.integers(0, T)), int(rng.integers(0, iters))
    (d / "config.json").write_text(json.dumps({"train": {"iters": iters}}) + "\n")
    (d / "losses.jsonl").write_text(json.dumps({"task": task, "step": step, "loss": 0.1}) + "\n")
    if task:
        (d / "state").mkdir(exist_ok=True)
        (d / "state/ckpt.pt").write_bytes(b"not a real checkpoint")
    ckpt = (task, 0) if task else None
    if state == "running":
        record = heartbeat("running", task, step, [iters] * T, ckpt)
    else:
        record = heartbeat("running", task, step, [iters] * T, ckpt, age=3600.0)
    (d / "heartbeat.json").write_text(json.dumps(record) + "\n")
    if state == "failed":
        failure = {
            "error": "TrainingDiverged",
            "message": f"Training diverged: the loss is nan at task {task + 1}, step {step}.\n"
            "The last good checkpoint is kept.",
            "exit_code": 2,
            "time": "2026-01-01T00:00:00+0000",
        }
        (d / "failed.json").write_text(json.dumps(failure) + "\n")


#: the share of cells in each state in :func:`write_status_study` (the rest are not started)
STATUS_MIX = {"done": 0.6, "running": 0.03, "interrupted": 0.05, "failed": 0.02}


def write_status_study(root: Path, n_cells: int, seeds: int = 20) -> dict[str, int]:
    """A study of ``n_cells`` cells caught mid-way (:data:`STATUS_MIX`), for ``hnet status`` at
    scale; returns how many cells of each state it wrote."""
    chosen = write_study(root, n_cells, seeds=tuple(range(seeds)))
    rng = np.random.default_rng(0)
    written = dict.fromkeys([*STATUS_MIX, "not started"], 0)
    for cell in chosen:
        r, state, edge = rng.random(), "not started", 0.0
        for name, share in STATUS_MIX.items():
            edge += share
            if r < edge:
                state = name
                break
        written[state] += 1
        if state != "done":
            d = Path(root) / run_dir(*cell)
            (d / "metrics.json").unlink()
            if state == "not started":
                d.rmdir()
            write_unfinished(d, state, rng)
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="directory to write runs/ and grid.json into")
    p.add_argument("--cells", type=int, default=None, help=f"default: all {len(cells())}")
    p.add_argument(
        "--unfinished",
        action="store_true",
        help="a study caught mid-way (for hnet status): 20 seeds, some cells running, "
        "interrupted, failed or not started",
    )
    args = p.parse_args()
    if args.unfinished:
        counts = write_status_study(args.out, args.cells or 3000)
        print(f"wrote {sum(counts.values())} cells under {args.out}: {counts}")
        return
    n = len(write_study(args.out, args.cells))
    print(f"wrote {n} run directories under {args.out / 'runs'} and {args.out / 'grid.json'}")


if __name__ == "__main__":
    main()
