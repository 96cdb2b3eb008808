"""Where a training step's time goes, operation by operation: the time ``torch.profiler``
measures for each ATen operation (its own time, children excluded; device time on a GPU)
beside what the roofline (:mod:`hnet.job.roofline`) says that operation needs at the least.

Profiling slows every operation by a few microseconds, so the measured column adds up to more
than a step's median; it ranks the costs, the step table gives the totals. Time the profiler
sees outside the counted operations (autograd's graph nodes, composites such as ``linear``
above the kernels, the optimizer's Python) is one line, ``(outside the ops)``: overhead that
only fewer, larger operations remove.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from hnet.job.limits import sync_device
from hnet.job.roofline import OpGroup

OUTSIDE = "(outside the ops)"


def measure_ops(
    steps: list[Callable[[], object]], counted: set[str], device: torch.device
) -> dict[str, float]:
    """Seconds per step spent in each operation over ``steps``, named as the roofline names
    them (``counted``: ``mm``, ``clone``, ``_fused_adam_``, …).

    The profiler also records the operations an operation calls (``clone`` → ``copy_``) and
    the composites above them (``linear`` → ``addmm``); the roofline's counter sees neither.
    So each counted operation is charged its inclusive time, unless it runs inside another
    counted one (then it is part of that one), and all other time is charged to
    ``OUTSIDE``."""
    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    # the profiler's backend (Kineto) logs its stages, and on a CPU-only machine an error
    # about the missing GPU, to stderr; read when profiling starts, a user's setting wins
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    sync_device(device)
    with profile(activities=activities) as prof:
        for step in steps:
            step()
        sync_device(device)

    def name(event) -> str | None:
        short = event.name.removeprefix("aten::")
        return short if event.name.startswith("aten::") and short in counted else None

    def inside_counted(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if name(parent):
                return True
            parent = parent.cpu_parent
        return False

    per_step: dict[str, float] = {}
    for event in prof.events():
        if inside_counted(event):
            continue
        op = name(event)
        if op:  # the whole operation, what it calls included
            micros = event.device_time_total if gpu else event.cpu_time_total
        else:  # only its own time: counted operations below it are charged to them
            op = OUTSIDE
            micros = event.self_device_time_total if gpu else event.self_cpu_time_total
        per_step[op] = per_step.get(op, 0.0) + micros / 1e6 / len(steps)
    return per_step


def print_breakdown(
    title: str, measured: dict[str, float], groups: dict[str, OpGroup], top: int, echo
) -> None:
    """The ``top`` most expensive operations of a step: calls, measured ms, roofline ms, MB."""
    echo(
        f"\n{title}: the {top} costliest operations, per step (profiled; roof ms: each at the "
        "peak or at the memory bandwidth, as in the step table)"
    )
    echo(f"{'operation':<32} {'calls':>6} {'ms':>8} {'roof ms':>8} {'MB':>8} {'GFLOP':>7}")
    ranked = sorted(measured.items(), key=lambda kv: -kv[1])[:top]
    for name, seconds in ranked:
        g = groups.get(name, OpGroup())
        calls = f"{g.calls:>6}" if name != OUTSIDE else f"{'':>6}"
        echo(
            f"{name[:32]:<32} {calls} {seconds * 1e3:>8.2f} {g.seconds * 1e3:>8.2f} "
            f"{g.bytes / 2**20:>8.1f} {g.flops / 1e9:>7.3f}"
        )
    shown = {name for name, _ in ranked}
    rest = sum(s for name, s in measured.items() if name not in shown)
    echo(f"{'(the others)':<32} {'':>6} {rest * 1e3:>8.2f}")
