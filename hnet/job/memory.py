"""Memory as a result: what a method keeps after every task, in bytes, MB and exemplars.

Continual-learning methods are only comparable at equal memory: a hypernetwork keeps an
embedding and regularizer targets per task, a replay method keeps images, EWC keeps a Fisher
matrix. The loop records :meth:`hnet.methods.common.base.Method.memory_bytes` right after every
task's ``end_task`` (checkpointed with the rest of the job, so a resumed run writes the same
record), and metrics.json gets (docs/metrics.md):

    memory.exemplar_bytes   bytes of one stored input: one training row as the benchmark stores
                            it (784 for a uint8 28×28 image, 3072 for a CIFAR image)
    memory.per_task[t]      after task t: ``bytes`` by kind, ``total_bytes``, ``total_mb``
                            (MB = 2**20 bytes) and ``exemplar_equivalents`` = total_bytes /
                            exemplar_bytes
    memory_mb, memory_exemplars   the last task's total: the report's memory columns
"""

from __future__ import annotations

import math
from typing import Any

from hnet.data import Benchmark

MB = 2**20


def exemplar_bytes(bench: Benchmark) -> int:
    """Bytes of one training row of the first task as stored (dtype and shape of ``x_train``)."""
    x = bench.tasks[0].x_train
    return math.prod(x.shape[1:]) * x.element_size()


def task_record(by_kind: dict[str, int], exemplar: int) -> dict[str, Any]:
    """One task's entry of ``memory.per_task`` from the method's bytes by kind."""
    total = sum(by_kind.values())
    return {
        "bytes": dict(by_kind),
        "total_bytes": total,
        "total_mb": total / MB,
        "exemplar_equivalents": total / exemplar,
    }


def results(recorded: list[dict[str, int] | None], bench: Benchmark) -> dict[str, Any]:
    """metrics.json's ``memory`` entry and the final ``memory_mb`` / ``memory_exemplars``
    (None for a task without a record: a run resumed from a checkpoint older than the
    record)."""
    exemplar = exemplar_bytes(bench)
    per_task = [None if r is None else task_record(r, exemplar) for r in recorded]
    last = per_task[-1] if per_task else None
    return {
        "memory": {"exemplar_bytes": exemplar, "per_task": per_task},
        "memory_mb": None if last is None else last["total_mb"],
        "memory_exemplars": None if last is None else last["exemplar_equivalents"],
    }
