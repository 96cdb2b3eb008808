"""Turn one labelled dataset into a task sequence: class splits and input permutations.

Shared by the MNIST, Fashion-MNIST and digits benchmarks so the task protocol (which classes
form task t, which task is unpermuted, how permutations are seeded) is written down once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hnet import rng
from hnet.data.base import TaskData
from hnet.errors import ConfigError


def flatten(x: Tensor) -> Tensor:
    """(n, h, w) images → (n, h*w) rows, keeping the dtype (uint8 stays uint8)."""
    return x.reshape(x.shape[0], -1).contiguous()


def pad_images(x: Tensor, pad_to: int) -> Tensor:
    """Zero-pad square images (n, s, s) to (n, pad_to, pad_to), centred (the paper's 28 → 32)."""
    size = x.shape[-1]
    if x.shape[-2] != size:
        raise ValueError(f"pad_images expects square images, got {tuple(x.shape[1:])}")
    if pad_to < size:
        raise ConfigError(f"data.pad_to={pad_to} is smaller than the {size}x{size} images.")
    lo = (pad_to - size) // 2
    out = x.new_zeros((x.shape[0], pad_to, pad_to))
    out[:, lo : lo + size, lo : lo + size] = x
    return out


def split_tasks(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    classes_per_task: int,
    n_classes: int = 10,
    scale: float = 1.0,
) -> list[TaskData]:
    """Task t holds classes ``t*c .. t*c+c-1`` with local labels ``0..c-1``."""
    if not isinstance(classes_per_task, int) or classes_per_task < 1:
        raise ConfigError(
            f"data.classes_per_task must be a positive int, got {classes_per_task!r}."
        )
    if n_classes % classes_per_task:
        raise ConfigError(
            f"data.classes_per_task={classes_per_task} does not divide the {n_classes} classes."
        )
    tasks = []
    for t in range(n_classes // classes_per_task):
        first = t * classes_per_task
        classes = tuple(range(first, first + classes_per_task))
        tr = (y_train >= first) & (y_train < first + classes_per_task)
        te = (y_test >= first) & (y_test < first + classes_per_task)
        tasks.append(
            TaskData(
                x_train[tr].contiguous(),
                (y_train[tr] - first).long(),
                x_test[te].contiguous(),
                (y_test[te] - first).long(),
                classes=classes,
                scale=scale,
            )
        )
    return tasks


def permutations(n_tasks: int, in_dim: int, seed: int) -> list[Tensor | None]:
    """None for task 1, then one fixed permutation per task drawn from the job seed's
    ``permutations`` stream. Drawn in task order, so task t's permutation does not depend
    on ``n_tasks``."""
    if not isinstance(n_tasks, int) or n_tasks < 1:
        raise ConfigError(f"data.n_tasks must be a positive int, got {n_tasks!r}.")
    gen = rng.generator(int(seed), "permutations")
    perms: list[Tensor | None] = [None]
    perms += [torch.randperm(in_dim, generator=gen) for _ in range(n_tasks - 1)]
    return perms


def permuted_tasks(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    n_tasks: int,
    seed: int,
    n_classes: int = 10,
    scale: float = 1.0,
) -> list[TaskData]:
    """All tasks share the same flat x/y tensors; only ``perm`` differs (applied per batch)."""
    perms = permutations(n_tasks, x_train.shape[1], seed)
    y_train, y_test = y_train.long(), y_test.long()
    return [
        TaskData(
            x_train,
            y_train,
            x_test,
            y_test,
            classes=tuple(range(t * n_classes, (t + 1) * n_classes)),
            perm=perm,
            scale=scale,
        )
        for t, perm in enumerate(perms)
    ]
