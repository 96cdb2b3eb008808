"""Permuted MNIST and Permuted Fashion-MNIST: task 1 as is, tasks 2.. a fixed pixel permutation.

The paper's PM-10 (``data.n_tasks: 100`` gives PM-100; docs/method.md). Images are zero-padded to
``data.pad_to`` (32 → 1024 inputs) and then permuted, as in the original code. All tasks share
ONE uint8 copy of the pixels; each task only carries its permutation, applied on the device per
batch, so PM-100 costs no more memory than PM-10.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec
from hnet.data.mnist import TRAIN_PER_CLASS, load_mnist_like
from hnet.data.tasks import flatten, pad_images, permuted_tasks

DEFAULTS: dict[str, Any] = {
    "data": {"n_tasks": 10, "pad_to": 32, "check_counts": True},
    "target": {"hidden": [1000, 1000], "activation": "relu"},
    "train": {"iters": 5000, "batch_size": 128, "lr": 1e-4},
    "size": "pm10",
}


def load_permuted(dataset: str, bench: str, data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """``seed`` fixes the permutations: same seed, same tasks."""
    x_tr, y_tr, x_te, y_te = load_mnist_like(dataset, data_cfg)
    pad_to = data_cfg.get("pad_to", DEFAULTS["data"]["pad_to"])
    n_tasks = data_cfg.get("n_tasks", DEFAULTS["data"]["n_tasks"])
    x_tr, x_te = (flatten(pad_images(x, pad_to)) for x in (x_tr, x_te))
    tasks = permuted_tasks(x_tr, y_tr, x_te, y_te, n_tasks, seed, scale=1 / 255)
    shape = (1, pad_to, pad_to)  # conv targets see the permuted pixels as an image
    return Benchmark(bench, tasks, in_dim=x_tr.shape[1], head_size=10, in_shape=shape)


def task_sizes(dataset: str, data_cfg: dict[str, Any]) -> list[int]:
    """Every task holds all training images of the dataset (permuted)."""
    n_tasks = data_cfg.get("n_tasks", DEFAULTS["data"]["n_tasks"])
    return [sum(TRAIN_PER_CLASS[dataset])] * n_tasks


# PM-100 is Permuted MNIST with 100 tasks and its own official settings (docs/method.md); a
# separate name keeps its results apart from PM-10's in study tables.
PM100: dict[str, Any] = {"data": {"n_tasks": 100}, "size": "pm100"}

for _bench, _dataset, _label, _extra in (
    ("permuted_mnist", "MNIST", "MNIST", {}),
    ("permuted_fmnist", "FashionMNIST", "Fashion-MNIST", {}),
    ("permuted_mnist_100", "MNIST", "MNIST (PM-100)", PM100),
):
    _defaults = copy.deepcopy(DEFAULTS)
    for _section, _value in _extra.items():
        if isinstance(_value, dict):
            _defaults[_section] = {**_defaults[_section], **_value}
        else:
            _defaults[_section] = _value
    BENCHMARKS.add(
        _bench,
        BenchmarkSpec(
            name=_bench,
            description=f"Permuted {_label}: n_tasks pixel permutations of 32x32-padded images",
            load=partial(load_permuted, _dataset, _bench),
            defaults=_defaults,
            scenarios=("cl1", "cl2", "cl3"),
            task_sizes=partial(task_sizes, _dataset),
        ),
    )
