"""How far a training step is from the hardware's limit: its floating-point work and the
machine's measured matrix-multiply peak, both on the device the step runs on.

The work is counted by ``torch.utils.flop_counter.FlopCounterMode`` over one real step: matrix
products and convolutions (forward and backward), the operations whose arithmetic is the floor
of a step. Elementwise work (activations, Adam, the regularizer's differences) is not counted:
it is memory-bound, and the gap between the step's time and ``flops / peak`` is exactly what
such overheads cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (timings of CUDA calls would otherwise be launches)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of matmuls and convolutions in one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak(device: torch.device, seconds: float = 0.5) -> float:
    """Best sustained fp32 FLOP/s of square matrix products on ``device`` with the current
    thread count (n = 1024 on CPUs, 4096 on GPUs), over about ``seconds``."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    torch.mm(a, b, out=out)  # warm-up: thread pool, kernels, caches
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sync_device(device)
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b, out=out)
        sync_device(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best
