"""Split MNIST and Split Fashion-MNIST: 5 two-class tasks {0,1}, {2,3}, ..., {8,9}.

The paper's SM benchmark (docs/method.md). Images stay uint8 (784 flat inputs, scale 1/255): four
times less device memory than float, and the cast happens per batch in ``TaskData.inputs``.
The benchmark's ``in_shape`` (1, 28, 28) lets convolutional targets (``target.kind``) reshape
the flat rows, e.g. ZenkeNet on Split Fashion-MNIST.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec
from hnet.data.mnist import IMAGE_SHAPE, TRAIN_PER_CLASS, load_mnist_like
from hnet.data.tasks import flatten, split_tasks

DEFAULTS: dict[str, Any] = {
    "data": {"classes_per_task": 2, "check_counts": True},
    "target": {"hidden": [400, 400], "activation": "relu"},
    "train": {"iters": 2000, "batch_size": 128, "lr": 1e-3},
    "size": "sm",
}


def load_split(dataset: str, bench: str, data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """Class splits are fixed by the protocol, so ``seed`` does not change the data."""
    del seed
    x_tr, y_tr, x_te, y_te = load_mnist_like(dataset, data_cfg)
    cpt = data_cfg.get("classes_per_task", DEFAULTS["data"]["classes_per_task"])
    tasks = split_tasks(flatten(x_tr), y_tr, flatten(x_te), y_te, cpt, scale=1 / 255)
    return Benchmark(bench, tasks, in_dim=784, head_size=cpt, in_shape=(1, *IMAGE_SHAPE))


def task_sizes(dataset: str, data_cfg: dict[str, Any]) -> list[int]:
    """Training images per task of the real dataset (classes_per_task consecutive classes)."""
    per_class = TRAIN_PER_CLASS[dataset]
    cpt = data_cfg.get("classes_per_task", DEFAULTS["data"]["classes_per_task"])
    return [sum(per_class[c : c + cpt]) for c in range(0, len(per_class) - cpt + 1, cpt)]


for _bench, _dataset, _label in (
    ("split_mnist", "MNIST", "MNIST"),
    ("split_fmnist", "FashionMNIST", "Fashion-MNIST"),
):
    BENCHMARKS.add(
        _bench,
        BenchmarkSpec(
            name=_bench,
            description=f"Split {_label}: 5 tasks of 2 classes, 784 inputs",
            load=partial(load_split, _dataset, _bench),
            defaults=copy.deepcopy(DEFAULTS),
            scenarios=("cl1", "cl2", "cl3"),
            task_sizes=partial(task_sizes, _dataset),
        ),
    )
