"""The machine's limits, measured on the device a step runs on, with the current thread count:
the matrix-multiply peak (FLOP/s) and the memory bandwidth by working-set size (bytes/s). They
are what :mod:`hnet.job.roofline` charges a step's operations against.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (timings of CUDA calls would otherwise be launches)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def memory_bandwidth(
    device: torch.device, sizes: tuple[int, ...] = tuple(4**k * 2**14 for k in range(8))
) -> tuple[list[int], list[float]]:
    """Best bytes/s for working sets of each of ``sizes`` bytes (16 KB to 256 MB), repeated hot:
    the faster of a copy (``dst.copy_(src)``: reads one tensor, writes another) and an
    in-place add (``dst.add_(src)``: reads two, writes one it has read). An operation that
    writes memory it did not read pays for fetching it first, so the two kernels bracket what
    elementwise operations such as Adam's can reach."""
    measured = []
    for size in sizes:
        best = 0.0
        for kernel, arrays in ((Tensor.copy_, 2), (Tensor.add_, 3)):
            n = max(size // (4 * arrays), 1)  # floats per tensor, `size` bytes of traffic
            src = torch.ones(n, device=device)
            dst = torch.ones(n, device=device)
            reps = max(1, 2**24 // (n * arrays))  # ≈ 64 MB of traffic per timing
            kernel(dst, src)
            for _ in range(7):
                sync_device(device)
                t0 = time.perf_counter()
                for _ in range(reps):
                    kernel(dst, src)
                sync_device(device)
                best = max(best, reps * 4 * arrays * n / (time.perf_counter() - t0))
        measured.append(best)
    return list(sizes), measured
