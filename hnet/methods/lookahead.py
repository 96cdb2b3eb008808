"""The lookahead ΔΘ of the output regularizer: the step Adam would take on the task loss alone.

The paper evaluates the regularizer at Θ + ΔΘ rather than at Θ, so the protection anticipates
where the task-loss step is about to move the hypernetwork. ΔΘ must come from a *copy* of the
optimizer state: the real Adam state advances only once per training step.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def adam_lookahead(optimizer: torch.optim.Adam, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """ΔΘ the Adam ``optimizer`` would apply for the current ``.grad``s, without touching its state.

    Mirrors ``torch.optim.Adam`` (no weight decay, no amsgrad): the moments are advanced on
    copies, bias-corrected, and turned into the step. Parameters without a gradient get no entry.
    """
    group = optimizer.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    if group.get("weight_decay", 0) or group.get("amsgrad", False):
        raise ValueError("lookahead supports plain Adam only (no weight decay, no amsgrad)")
    delta = {}
    for name, p in params.items():
        if p.grad is None:
            continue
        st = optimizer.state.get(p, {})
        step = float(st["step"]) + 1 if "step" in st else 1.0
        m = st["exp_avg"] * b1 + (1 - b1) * p.grad if "exp_avg" in st else (1 - b1) * p.grad
        v = (
            st["exp_avg_sq"] * b2 + (1 - b2) * p.grad.square()
            if "exp_avg_sq" in st
            else (1 - b2) * p.grad.square()
        )
        denom = (v.sqrt() / (1 - b2**step) ** 0.5).add_(eps)
        delta[name] = -(lr / (1 - b1**step)) * m / denom
    return delta
