"""Adam's fused kernel called directly: the optimizer step and the regularizer's lookahead.

The plain versions are ``optimizer.step()`` and the elementwise lookahead of
:func:`hnet.methods.common.lookahead.adam_lookahead`. :func:`direct_step` makes the same
kernel call ``Optimizer.step`` would make, without the Python around it (bitwise the same
update, ``tests/unit/test_optim.py``); :func:`lookahead` computes ΔΘ with that kernel on copies
of the moments, in one pass instead of nine elementwise ones (equal to the plain ΔΘ to float
rounding, ``tests/unit/test_regularizer.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


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


def direct_step(optimizer: torch.optim.Optimizer) -> bool:
    """Take ``optimizer``'s step by calling the fused kernel directly if it is a
    :func:`plain_fused` Adam past its first step; False, having done nothing, otherwise. The
    same tensors with the same arguments (bitwise the same update,
    ``tests/unit/test_optim.py``), without ``Optimizer.step``'s Python around it
    (profiling hooks, argument checks, grouping tensors by device and dtype). That Python is a
    fixed cost per call: ≈ 0.1 ms per step on split_fmnist's hypernetwork, whose whole step is
    a few ms (docs/performance.md, "Lean steps")."""
    if not plain_fused(optimizer):
        return False
    calls = []
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        states = [optimizer.state.get(p) for p in params]
        if not all(states) or len({(p.device, p.dtype) for p in params}) > 1:
            return False  # the first step creates the state; mixed devices need grouping
        if params:
            calls.append((group, params, states))
    for group, params, states in calls:
        steps = [st["step"] for st in states]
        torch._foreach_add_(steps, 1)
        fused_adam(group, params, [p.grad for p in params], states, steps)
    return True


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


def lookahead(
    group: dict,
    names: list[str],
    grads: list[Tensor],
    states: list[dict],
    started: bool,
    into: dict[str, Tensor],
) -> dict[str, Tensor]:
    """The same ΔΘ from Adam's fused kernel, run on copies of the moments with the "parameters"
    zeros (ΔΘ comes out) or, for ``into``'s tensors, those tensors themselves (ΔΘ is added in
    place): one pass over the moments instead of nine elementwise ones (the lookahead's cost is
    memory traffic over every hypernetwork weight). Returns ΔΘ of every parameter it did not
    add in place (the others, and ``into``'s strided views, which the kernel cannot walk and
    :func:`hnet.methods.common.lookahead.given` adds to afterwards)."""
    targets = [_delta_target(into.get(n), g) for n, g in zip(names, grads, strict=True)]
    if started:  # × 1: copies of all moments in one call each
        copies = [
            {"exp_avg": m, "exp_avg_sq": v}
            for m, v in zip(
                torch._foreach_mul([st["exp_avg"] for st in states], 1.0),
                torch._foreach_mul([st["exp_avg_sq"] for st in states], 1.0),
                strict=True,
            )
        ]
        steps = torch._foreach_add([st["step"] for st in states], 1)
    else:
        copies = [
            {"exp_avg": torch.zeros_like(g), "exp_avg_sq": torch.zeros_like(g)} for g in grads
        ]
        steps = [torch.ones((), dtype=torch.float32, device=g.device) for g in grads]
    fused_adam(group, targets, grads, copies, steps)
    return {n: t for n, t in zip(names, targets, strict=True) if t is not into.get(n)}


def _delta_target(base: Tensor | None, grad: Tensor) -> Tensor:
    """Where the kernel writes a parameter's ΔΘ: zeros, or ``base`` itself if the kernel can
    update it in place (contiguous, like the gradient)."""
    if base is not None and base.is_contiguous() and grad.is_contiguous():
        return base
    return torch.zeros_like(grad)
