"""Benchmarks by name: ``BENCHMARKS`` and ``load_benchmark``.

Each benchmark module registers a :class:`~hnet.data.base.BenchmarkSpec` on import; adding one is
a module plus one import line below. Nothing here imports torchvision or scikit-learn: loaders
import them lazily, so ``hnet list`` and job startup stay fast.
"""

from __future__ import annotations

from typing import Any

# One line per benchmark module: importing it registers its benchmarks.
from hnet.data import (
    cifar,  # noqa: F401
    digits,  # noqa: F401
    permuted_mnist,  # noqa: F401
    split_mnist,  # noqa: F401
    toy_regression,  # noqa: F401
)
from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec, TaskData
from hnet.data.validation import hold_out
from hnet.errors import DataError

__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkSpec", "TaskData", "load_benchmark"]


def load_benchmark(name: str, data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """Build benchmark ``name`` on the CPU (move it with ``Benchmark.to(device)``).

    ``data_cfg`` is the job's ``data`` section; keys it lacks take the benchmark's defaults.
    ``data.val_fraction`` > 0 holds out a seeded validation split of every task
    (:mod:`hnet.data.validation`).
    Unknown names raise ConfigError (with close matches); missing data raises DataError.
    """
    spec = BENCHMARKS.get(name)
    cfg = {**spec.defaults.get("data", {}), **data_cfg}
    bench = spec.load(cfg, seed)
    if not isinstance(bench, Benchmark) or bench.n_tasks == 0:
        raise DataError(f"Benchmark {name!r} produced no tasks from data settings {cfg}.")
    return hold_out(bench, cfg.get("val_fraction", 0.0), seed)  # validation split, if asked
