"""Toy 1-D regression: the paper's illustration of forgetting (as in hypnettorch).

Three tasks, each a cubic or quadratic on its own input interval, learned in sequence; a plain
network forgets the earlier curves, a hypernetwork keeps them. Needs no data files. Training
inputs and noise come from a generator seeded by the job seed; the test set is a dense,
noise-free grid over each interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from hnet import rng
from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec, TaskData

DOMAINS: tuple[tuple[float, float], ...] = ((-4.0, -2.0), (-1.0, 1.0), (2.0, 4.0))
FUNCTIONS: tuple[Callable[[Tensor], Tensor], ...] = (
    lambda x: (x + 3.0) ** 3,
    lambda x: 2.0 * x**2 - 1.0,
    lambda x: (x - 3.0) ** 3,
)
NOISE_STD = 0.05
N_TEST = 100

DEFAULTS: dict[str, Any] = {
    "data": {"n_train": 20},
    "target": {"hidden": [10, 10], "activation": "relu"},
    "train": {"iters": 2000, "batch_size": 20, "lr": 1e-3},
    "size": "toy",
}


def load_toy_regression(data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """x of shape (n, 1), y of shape (n, 1), float32; noise only on the training targets."""
    n_train = data_cfg.get("n_train", DEFAULTS["data"]["n_train"])
    gen = rng.generator(int(seed), "toy-data")
    tasks = []
    for (lo, hi), f in zip(DOMAINS, FUNCTIONS, strict=True):
        x_train = lo + (hi - lo) * torch.rand(n_train, 1, generator=gen)
        y_train = f(x_train) + NOISE_STD * torch.randn(n_train, 1, generator=gen)
        x_test = torch.linspace(lo, hi, N_TEST).unsqueeze(1)
        tasks.append(TaskData(x_train, y_train, x_test, f(x_test)))
    return Benchmark("toy_regression", tasks, in_dim=1, head_size=1, kind="regression")


BENCHMARKS.add(
    "toy_regression",
    BenchmarkSpec(
        name="toy_regression",
        description="Toy 1-D regression (3 polynomials on disjoint intervals), no data files",
        load=load_toy_regression,
        defaults=DEFAULTS,
        scenarios=("cl1",),
        kind="regression",
        task_sizes=lambda data_cfg: (
            [data_cfg.get("n_train", DEFAULTS["data"]["n_train"])] * len(DOMAINS)
        ),
    ),
)
