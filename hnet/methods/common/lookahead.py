"""The lookahead ΔΘ of the output regularizer: the step Adam would take on the task loss alone.

The paper evaluates the regularizer at Θ + ΔΘ rather than at Θ, so the protection anticipates
where the task-loss step is about to move the hypernetwork. ΔΘ must come from a *copy* of the
optimizer state: the real Adam state advances only once per training step.

The regularizer asks for ΔΘ through a :data:`Lookahead`: a function that adds ΔΘ of some
parameters into tensors it is given (the ``gram`` term's rows of ``W + ΔW − W*``, written in
place: no ΔW tensor, no extra pass over the largest weight) and returns ΔΘ of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from hnet.fast import adam as fast_adam

Lookahead = Callable[[dict[str, Tensor]], dict[str, Tensor]]
"""``lookahead(into)``: adds ΔΘ of each parameter named in ``into`` to that tensor (in place)
and returns ΔΘ of every other parameter that has one."""


def adam(optimizer: torch.optim.Adam, params: dict[str, Tensor]) -> Lookahead:
    """The :data:`Lookahead` of ``optimizer``'s next step on ``params`` (by name)."""
    return partial(adam_lookahead, optimizer, params)


def given(delta: dict[str, Tensor]) -> Lookahead:
    """A :data:`Lookahead` of a ΔΘ computed elsewhere (tests, a fixed shift)."""

    def lookahead(into: dict[str, Tensor]) -> dict[str, Tensor]:
        for n, t in into.items():
            if n in delta:
                t.add_(delta[n])
        return {n: d for n, d in delta.items() if n not in into}

    return lookahead


@torch.no_grad()
def adam_lookahead(
    optimizer: torch.optim.Adam, params: dict[str, Tensor], into: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """ΔΘ the Adam ``optimizer`` would apply for the current ``.grad``s, without touching its state.

    Mirrors ``torch.optim.Adam`` (no weight decay, no amsgrad): the moments are advanced on
    copies, bias-corrected, and turned into the step. Parameters without a gradient get no entry.
    ``into`` (see :data:`Lookahead`) takes ΔΘ of the parameters it names, added in place.
    With a fused Adam (:mod:`hnet.methods.common.optim`) the step comes from the same fused
    kernel (:func:`hnet.fast.adam.lookahead`);
    otherwise all parameters go through each elementwise operation at once
    (``torch._foreach_*``, as Adam's multi-tensor path does).
    """
    into = into or {}
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
    if fast_adam.plain_fused(optimizer):  # each moment advances with its own step counter, which
        # lives on the device: reading it would stall a GPU every training step
        delta = fast_adam.lookahead(group, names, grads, states, started.pop(), into)
        return given(delta)(into)
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
    return given(dict(zip(names, delta, strict=True)))(into)
