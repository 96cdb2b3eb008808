"""Per-task BatchNorm running statistics.

A hypernetwork generates every *parameter* of a target net, BatchNorm's affine γ/β included, but
the running mean and variance are not parameters: they are estimated from the data while a task
is trained and differ from task to task. Sharing one set would let each new task overwrite the
statistics an earlier task is evaluated with, which is forgetting the regularizer cannot see.
So every task owns its own set, and the caller passes it in explicitly.

One task's set is a single flat tensor ``(S,)``: the ``running_mean`` and ``running_var`` of
every BatchNorm layer, concatenated in module order (:func:`stat_shapes`). ``num_batches_tracked``
is left out: with a fixed momentum (torch's default 0.1) BatchNorm never reads it. A method keeps
all tasks in one ``(T, S)`` tensor (:func:`init_stats`); row ``t`` (``stats[t]`` is a view) is
updated in place while task ``t`` trains and is what task ``t`` is tested with; the tensor goes
into the checkpoint as it is.

Baselines own an ordinary module whose buffers hold the statistics; :func:`get_stats` and
:func:`set_stats` swap one task's set in and out when per-task statistics are turned on there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

STAT_BUFFERS = ("running_mean", "running_var")


def stat_shapes(net: nn.Module) -> list[tuple[str, torch.Size]]:
    """Names and shapes of the running statistics, in the order a flat stats vector holds them."""
    out = []
    for mod_name, mod in net.named_modules():
        if isinstance(mod, _BatchNorm) and mod.track_running_stats:
            prefix = f"{mod_name}." if mod_name else ""
            out += [(prefix + b, getattr(mod, b).shape) for b in STAT_BUFFERS]
    return out


def num_stats(net: nn.Module) -> int:
    """Length ``S`` of one task's flat statistics (0 for a net without BatchNorm)."""
    return sum(math.prod(shape) for _, shape in stat_shapes(net))


def init_stats(
    net: nn.Module,
    n_tasks: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Fresh statistics (mean 0, variance 1, like a new BatchNorm): ``(S,)``, or ``(n_tasks, S)``
    with one independent row per task."""
    parts = [
        (torch.zeros if name.endswith("running_mean") else torch.ones)(
            math.prod(shape), device=device, dtype=dtype
        )
        for name, shape in stat_shapes(net)
    ]
    flat = torch.cat(parts) if parts else torch.zeros(0, device=device, dtype=dtype)
    return flat if n_tasks is None else flat.expand(n_tasks, -1).clone()


def unflatten_stats(net: nn.Module, stats: Tensor) -> dict[str, Tensor]:
    """Flat ``(..., S)`` statistics → ``{buffer name: (..., *shape)}`` views.

    Views, not copies: BatchNorm's in-place running-stat update in train mode therefore lands in
    ``stats`` itself.
    """
    out, start = {}, 0
    lead = stats.shape[:-1]
    for name, shape in stat_shapes(net):
        n = math.prod(shape)
        out[name] = stats[..., start : start + n].view(*lead, *shape)
        start += n
    if start != stats.shape[-1]:
        raise ValueError(f"stats have {stats.shape[-1]} entries, the net needs {start}")
    return out


def get_stats(net: nn.Module) -> Tensor:
    """A copy of the module's current running statistics as one flat ``(S,)`` tensor."""
    buffers = dict(net.named_buffers())
    parts = [buffers[name].detach().flatten() for name, _ in stat_shapes(net)]
    return torch.cat(parts).clone() if parts else torch.zeros(0)


@torch.no_grad()
def set_stats(net: nn.Module, stats: Tensor) -> None:
    """Copy a flat ``(S,)`` set into the module's BatchNorm buffers (e.g. the task about to run)."""
    buffers = dict(net.named_buffers())
    for name, value in unflatten_stats(net, stats).items():
        buffers[name].copy_(value)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) and m.track_running_stats for m in net.modules())
