"""The one place methods build and step their optimizer: Adam with the job's betas, fused where
torch has a fused kernel for the device.

A fused Adam updates every parameter tensor in one kernel (CPU and CUDA) instead of a chain of
elementwise kernels per tensor: about 2.7× faster per step here for a hypernetwork's parameters,
with the same update rule (values agree to float rounding, not bit for bit, with the for-loop
implementation). Resume stays exact: a run uses the same implementation before and after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.Tensor], lr: float, cfg: dict[str, Any]) -> torch.optim.Adam:
    """Adam over ``params`` at learning rate ``lr`` with ``cfg["train"]["adam_betas"]``."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_DEVICES for p in params)
    return torch.optim.Adam(
        params, lr=lr, betas=tuple(cfg["train"]["adam_betas"]), fused=fused or None
    )


def plain_fused(optimizer: torch.optim.Optimizer) -> bool:
    """True for an Adam as :func:`adam` makes it: fused, no weight decay, amsgrad, maximize,
    capturable or differentiable mode, a float learning rate. Only such an Adam's update is
    exactly one call of the fused kernel, which :func:`step` and the lookahead make directly."""
    d = optimizer.defaults
    return (
        type(optimizer) is torch.optim.Adam
        and bool(d.get("fused"))
        and not any(
            g["weight_decay"] or g["amsgrad"] or g["maximize"] or g["capturable"]
            or g["differentiable"] or g.get("decoupled_weight_decay") or isinstance(g["lr"], Tensor)
            for g in optimizer.param_groups
        )
    )  # fmt: skip


def step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``; for a :func:`plain_fused` Adam past its first step, the fused
    kernel called directly, on the same tensors with the same arguments (bitwise the same
    update, ``tests/unit/test_optim.py``), without ``Optimizer.step``'s Python around it
    (profiling hooks, argument checks, grouping tensors by device and dtype). That Python is a
    fixed cost per call: ≈ 0.1 ms per step on split_fmnist's hypernetwork, whose whole step is
    a few ms (docs/development.md, "Lean steps")."""
    if not plain_fused(optimizer):
        optimizer.step()
        return
    calls = []
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        states = [optimizer.state.get(p) for p in params]
        if not all(states) or len({(p.device, p.dtype) for p in params}) > 1:
            optimizer.step()  # the first step creates the state; mixed devices need grouping
            return
        if params:
            calls.append((group, params, states))
    for group, params, states in calls:
        steps = [st["step"] for st in states]
        torch._foreach_add_(steps, 1)
        fused_adam(group, params, [p.grad for p in params], states, steps)


def fused_adam(
    group: dict[str, Any], params: list[Tensor], grads: list[Tensor], states: list, steps: list
) -> None:
    """One call of Adam's fused kernel (``torch._fused_adam_``) with ``group``'s settings:
    ``params`` move by the Adam step for ``grads``, the moments in ``states`` (dicts with
    ``exp_avg``, ``exp_avg_sq``) advance, ``steps`` are the already incremented step counts.
    Every tensor must be contiguous: the kernel walks raw memory."""
    b1, b2 = group["betas"]
    torch._fused_adam_(
        params, grads, [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states],
        [], steps, lr=group["lr"], beta1=b1, beta2=b2, weight_decay=0.0, eps=group["eps"],
        amsgrad=False, maximize=False,
    )  # fmt: skip
