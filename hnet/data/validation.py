"""A validation split held out of every task's training data (``data.val_fraction``).

Why: a study tunes hyperparameters on a score it may look at, and the test set is not one. With
``data.val_fraction = f > 0`` every task keeps a fraction f of its training rows aside, never
trains on them, and the job scores every task on them after every task, like the test rows.
Written once for all benchmarks (applied by :func:`hnet.data.load_benchmark` after a benchmark's
own loader), so a new benchmark gets it for free.

- **Class-stratified.** Each class of a task gives ``round(f · n_class)`` rows (at least one row of
  every class stays in training); regression tasks give ``round(f · n)`` rows (at least one stays).
- **Seeded by the job seed**, through the ``validation-split`` stream of :mod:`hnet.rng`, keyed by
  task: the split of task t does not depend on the other tasks, and ``f = 0`` draws nothing, so
  results without a validation split are exactly what they were before it existed.
- **Shared storage stays shared.** Tasks that share one copy of the rows (permuted benchmarks:
  only the permutation differs) share the held-out rows too, drawn once for the first of them,
  so PM-100 still holds one copy of the pixels.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from hnet import rng
from hnet.data.base import Benchmark, TaskData
from hnet.errors import ConfigError


def check_fraction(fraction: object) -> float:
    """``data.val_fraction`` as a float in [0, 1), or a ConfigError naming the key."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ConfigError(f"data.val_fraction must be a number in [0, 1), got {fraction!r}.")
    if not 0 <= fraction < 1:
        raise ConfigError(
            f"data.val_fraction must be in [0, 1) (the share of each task's training data held "
            f"out for validation; 0 = none), got {fraction!r}."
        )
    return float(fraction)


def split_indices(
    y: Tensor, fraction: float, classification: bool, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(train rows, validation rows), both sorted, for labels ``y``; stratified by class."""
    n = y.shape[0]
    if classification:
        groups = [torch.nonzero(y == c).flatten() for c in torch.unique(y).tolist()]
    else:
        groups = [torch.arange(n)]
    val = []
    for idx in groups:
        k = min(round(fraction * len(idx)), len(idx) - 1)
        if k > 0:
            val.append(idx[torch.randperm(len(idx), generator=generator)[:k]])
    held = torch.cat(val).sort().values if val else torch.empty(0, dtype=torch.long)
    keep = torch.ones(n, dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def hold_out(bench: Benchmark, fraction: float, seed: int) -> Benchmark:
    """``bench`` with a fraction of every task's training rows moved into ``x_val``/``y_val``."""
    fraction = check_fraction(fraction)
    if fraction == 0:
        return bench
    classification = bench.kind == "classification"
    shared: dict[tuple[int, int], tuple[Tensor, Tensor, Tensor, Tensor]] = {}
    tasks: list[TaskData] = []
    for t, task in enumerate(bench.tasks):
        key = (id(task.x_train), id(task.y_train))
        if key not in shared:
            gen = rng.generator(int(seed), "validation-split", t)
            tr, va = split_indices(task.y_train, fraction, classification, gen)
            if len(va) == 0:
                raise ConfigError(
                    f"data.val_fraction={fraction} holds out no training example of task {t + 1} "
                    f"of {bench.name} ({task.n_train} training examples); raise it or use 0."
                )
            shared[key] = (
                task.x_train[tr].contiguous(),
                task.y_train[tr].contiguous(),
                task.x_train[va].contiguous(),
                task.y_train[va].contiguous(),
            )
        x_tr, y_tr, x_va, y_va = shared[key]
        tasks.append(dataclasses.replace(task, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va))
    return dataclasses.replace(bench, tasks=tasks)
