"""The lookahead ΔΘ of the output regularizer: the step Adam would take on the task loss alone.

The paper evaluates the regularizer at Θ + ΔΘ rather than at Θ, so the protection anticipates
where the task-loss step is about to move the hypernetwork. ΔΘ must come from a *copy* of the
optimizer state: the real Adam state advances only once per training step.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.adam import adam as adam_functional  # Adam's public functional form


@torch.no_grad()
def adam_lookahead(optimizer: torch.optim.Adam, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """ΔΘ the Adam ``optimizer`` would apply for the current ``.grad``s, without touching its state.

    Mirrors ``torch.optim.Adam`` (no weight decay, no amsgrad): the moments are advanced on
    copies, bias-corrected, and turned into the step. Parameters without a gradient get no entry.
    With a fused Adam (:mod:`hnet.methods.optim`) the step comes from the same fused kernel;
    otherwise all parameters go through each elementwise operation at once
    (``torch._foreach_*``, as Adam's multi-tensor path does).
    """
    group = optimizer.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    if group.get("weight_decay", 0) or group.get("amsgrad", False):
        raise ValueError("lookahead supports plain Adam only (no weight decay, no amsgrad)")
    names = [n for n, p in params.items() if p.grad is not None]
    if not names:
        return {}
    grads = [params[n].grad for n in names]
    states = [optimizer.state.get(params[n], {}) for n in names]
    started = {"exp_avg" in st for st in states}
    if len(started) > 1:
        raise ValueError("lookahead: some parameters have Adam moments, others not")
    if optimizer.defaults.get("fused"):  # each moment advances with its own step counter, which
        # lives on the device: reading it would stall a GPU every training step
        deltas = _fused_step(states, grads, started.pop(), lr, b1, b2, eps)
        return dict(zip(names, deltas, strict=True))
    steps = {float(st["step"]) if "step" in st else 0.0 for st in states}  # on the host here
    if len(steps) > 1 or started != {steps != {0.0}}:
        raise ValueError("lookahead: the parameters' Adam states are at different steps")
    step = steps.pop() + 1
    if step > 1:  # m' = β1 m + (1 − β1) g,  v' = β2 v + (1 − β2) g²
        m = torch._foreach_mul([st["exp_avg"] for st in states], b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        v = torch._foreach_mul([st["exp_avg_sq"] for st in states], b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
    else:
        m = torch._foreach_mul(grads, 1 - b1)
        v = torch._foreach_mul(torch._foreach_mul(grads, grads), 1 - b2)
    denom = torch._foreach_sqrt(v)  # √v' / √(1 − β2^t) + ε
    torch._foreach_div_(denom, (1 - b2**step) ** 0.5)
    torch._foreach_add_(denom, eps)
    delta = torch._foreach_mul(m, -(lr / (1 - b1**step)))
    torch._foreach_div_(delta, denom)
    return dict(zip(names, delta, strict=True))


def _fused_step(
    states: list[dict],
    grads: list[Tensor],
    started: bool,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
) -> list[Tensor]:
    """The same ΔΘ from Adam's fused kernel, run on zero "parameters" and copies of the moments:
    one pass over the moments instead of nine elementwise ones (the lookahead's cost is memory
    traffic over every hypernetwork weight)."""
    deltas = [torch.zeros_like(g) for g in grads]
    if started:
        m = [st["exp_avg"].clone() for st in states]
        v = [st["exp_avg_sq"].clone() for st in states]
        steps = [st["step"].clone() for st in states]
    else:
        m = [torch.zeros_like(g) for g in grads]
        v = [torch.zeros_like(g) for g in grads]
        steps = [torch.zeros((), dtype=torch.float32, device=g.device) for g in grads]
    adam_functional(
        deltas, grads, m, v, [], steps, fused=True, amsgrad=False, beta1=b1, beta2=b2, lr=lr,
        weight_decay=0.0, eps=eps, maximize=False,
    )  # fmt: skip
    return deltas
