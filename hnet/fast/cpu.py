"""Process-wide CPU settings that make steps faster without changing any result.

The plain version is to leave both alone: :func:`flush_denormals` only changes values below
1.2e-38 (far below anything a result depends on) and :func:`tune_allocator` only how freed
memory is reused. Both are applied once per job (``hnet.job``); ``HNET_DENORMALS=keep`` and
any ``MALLOC_*`` setting opt out. Tests: ``tests/unit/test_environment.py``.
"""

from __future__ import annotations

import os
import sys


def flush_denormals() -> bool:
    """Treat subnormal floats as zero on the CPU (True if applied; no effect on CUDA).

    Late in a task, Adam's first moment of weights whose gradients have died out (other tasks'
    heads, saturated units) decays geometrically through the subnormal range, and every
    arithmetic instruction touching a subnormal takes a slow microcode path: on split_fmnist a
    quarter of the output layer's moments were subnormal after 2,000 steps and the step time
    grew from 6 to 11 ms within task 1 (docs/performance.md, "Subnormal floats"). Values below
    1.2e-38 become 0, far below anything a result depends on. Must run before torch starts its
    thread pool: worker threads copy the floating-point mode of the thread that creates them.
    ``HNET_DENORMALS=keep`` opts out (IEEE behaviour)."""
    if os.environ.get("HNET_DENORMALS", "").lower() == "keep":
        return False
    import torch

    return bool(torch.set_flush_denormal(True))


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt (malloc.h)


def tune_allocator() -> bool:
    """Keep freed memory in the process for reuse (glibc only; True if applied).

    A training step allocates and frees the same few large tensors (generated weights, their
    gradients, the regularizer's outputs) thousands of times. glibc serves large requests with
    fresh ``mmap`` pages and returns them on ``free``, so every step pays page faults to zero
    them again. With mmap and trimming thresholds above the step's working set the memory is
    reused instead (≈ 10 % faster steps on split_fmnist; docs/performance.md). A user's own
    ``MALLOC_*`` environment settings win; other C libraries are left alone."""
    if sys.platform != "linux" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        settings = (
            (M_MMAP_THRESHOLD, 256 << 20),
            (M_TRIM_THRESHOLD, 1 << 30),
            (M_TOP_PAD, 64 << 20),
        )
        return all(libc.mallopt(param, value) == 1 for param, value in settings)
    except (OSError, AttributeError):  # not glibc (musl, …): nothing to tune
        return False
