"""The roofline of a training step: what its operations, run one after the other as eager
PyTorch runs them, would cost if each ran as fast as this machine's limits allow.

A step is a few hundred small operations. The matmul-FLOP floor says how long the arithmetic
would take at the matrix-multiply peak (:mod:`hnet.job.limits`), but most operations of a
hypernetwork step do little arithmetic per byte (the generated weights, the regularizer's
targets and differences, Adam's moments are all long vectors): they are bound by memory
traffic, not by FLOPs. The roofline charges each operation the larger of

- its FLOPs at the measured matmul peak, and
- its bytes at the memory bandwidth measured for a working set of that size (1 MB runs from
  cache, 256 MB from DRAM; both measured here, hot: :func:`hnet.job.limits.memory_bandwidth`),

and sums over the step. The bytes of an operation are what it must touch if nothing is reused
between operations: every tensor argument read once, every output (or argument it writes in
place) written once; views move nothing. The gap between the roofline and the measured step is
per-operation overhead (dispatch, autograd bookkeeping, allocation) and kernels slower than
the machine's best; the bytes are what fusing operations (``torch.compile``, hand-written
kernels) could save. It is a yardstick, not a proof: an operation can beat it where its
inputs are still in cache from the one before.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

# Operations that only allocate or describe memory: they move no data.
_NO_TRAFFIC = {
    torch.ops.aten.empty.memory_format,
    torch.ops.aten.empty_strided.default,
    torch.ops.aten.empty_like.default,
    torch.ops.aten.new_empty.default,
    torch.ops.aten.new_empty_strided.default,
}
# Operations that write their destination without reading it.
_WRITE_ONLY = {
    torch.ops.aten.copy_.default,
    torch.ops.aten.fill_.Scalar,
    torch.ops.aten.zero_.default,
}


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass
class OpCost:
    """One executed operation: its name, matmul/conv FLOPs and unfused memory traffic."""

    name: str
    flops: int
    bytes: int


class OpCounter(TorchDispatchMode):
    """Records every ATen operation below autograd (so the backward's too) with its FLOPs (the
    formulas of ``torch.utils.flop_counter``) and its bytes (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[OpCost] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace != "aten":  # profiler markers and the like: not the step's work
            return out
        packet = func._overloadpacket
        name = str(packet).removeprefix("aten.")
        if func.is_view or func in _NO_TRAFFIC:
            self.ops.append(OpCost(name, 0, 0))
            return out
        schema = func._schema
        written, read = 0, 0
        for i, arg in enumerate(schema.arguments):
            value = args[i] if i < len(args) else kwargs.get(arg.name)
            tensors = [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
            size = sum(_nbytes(t) for t in tensors)
            mutated = arg.alias_info is not None and arg.alias_info.is_write
            if mutated:
                written += size
            if not (mutated and func in _WRITE_ONLY):
                read += size
        fresh = [r.alias_info is None for r in schema.returns]
        outs = out if isinstance(out, tuple | list) else (out,)
        for is_fresh, value in zip(fresh, outs, strict=False):
            if is_fresh:
                written += sum(
                    _nbytes(t) for t in tree_leaves(value) if isinstance(t, torch.Tensor)
                )
        formula = flop_registry.get(packet)
        flops = formula(*args, **kwargs, out_val=out) if formula else 0
        self.ops.append(OpCost(name, int(flops), read + written))
        return out


def count_ops(fn: Callable[[], object]) -> list[OpCost]:
    """The operations of one call of ``fn``, forward and backward, in execution order."""
    with OpCounter() as counter:
        fn()
    return counter.ops


@dataclass
class Machine:
    """What the floor charges: matmul peak (FLOP/s) and memory bandwidth (bytes/s) by size."""

    peak: float
    sizes: list[int]  # working sets measured, bytes of traffic (read + written), ascending
    bandwidth: list[float]  # bytes/s at each size (hnet.job.limits.memory_bandwidth)

    def bandwidth_at(self, nbytes: int) -> float:
        """The fastest that traffic of this size can move: the best bandwidth measured for a
        working set at least as large. A working set that fits where a larger one fits moves at
        least as fast, so this envelope also discards tiny kernels timed by their dispatch cost
        and a measurement slowed by a noisy neighbour."""
        i = min(bisect.bisect_left(self.sizes, nbytes), len(self.sizes) - 1)
        return max(self.bandwidth[i:])

    def price(self, op: OpCost) -> tuple[float, float]:
        """Seconds ``(compute, memory)`` of one operation: its FLOPs at the peak, its bytes at
        the bandwidth of its size. The larger one binds."""
        return op.flops / self.peak, op.bytes / self.bandwidth_at(op.bytes)


@dataclass
class Floor:
    """A step's roofline: totals and the floor (seconds), split by what bounds each op."""

    ops: int
    flops: int
    bytes: int
    compute_seconds: float  # ops bound by arithmetic
    memory_seconds: float  # ops bound by traffic

    @property
    def seconds(self) -> float:
        return self.compute_seconds + self.memory_seconds


def roofline(ops: list[OpCost], machine: Machine) -> Floor:
    """Each operation at the larger of its FLOPs at the peak and its bytes at the bandwidth
    of its size, summed."""
    compute = memory = 0.0
    for op in ops:
        c, m = machine.price(op)
        if c >= m:
            compute += c
        else:
            memory += m
    return Floor(
        ops=len(ops),
        flops=sum(o.flops for o in ops),
        bytes=sum(o.bytes for o in ops),
        compute_seconds=compute,
        memory_seconds=memory,
    )


@dataclass
class OpGroup:
    """All operations of one name in a step: how many, their floor, bytes and FLOPs."""

    calls: int = 0
    flops: int = 0
    bytes: int = 0
    seconds: float = 0.0  # their roofline


def by_name(ops: list[OpCost], machine: Machine) -> dict[str, OpGroup]:
    """The step's operations grouped by name (``mm``, ``_fused_adam_``, …), each group priced
    like :func:`roofline` prices a step."""
    groups: dict[str, OpGroup] = {}
    for op in ops:
        g = groups.setdefault(op.name, OpGroup())
        g.calls += 1
        g.flops += op.flops
        g.bytes += op.bytes
        g.seconds += max(machine.price(op))
    return groups
