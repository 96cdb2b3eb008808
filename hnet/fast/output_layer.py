"""The hypernetwork's output layer, laid out for speed: :class:`WideLinear`.

The plain version is ``nn.Linear(in, out)``: :class:`WideLinear` computes the same function
with the same initial values (``tests/unit/test_output_layout.py``) but stores its weight
transposed, ``(in, out)``, and keeps the bias in memory right after the weight's last row, so
the forward and backward are one product each (docs/performance.md, "The output layer's
layout"). Checkpoints written with the ``nn.Linear`` layout still load:
:func:`upgrade_checkpoint` puts the state kept *about* that weight elsewhere (Adam's moments,
the regularizer's frozen copy) into the current layout.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class WideLinear(nn.Module):
    """``y = x W + b`` with ``W`` stored as ``(in_features, out_features)``: the hypernetwork's
    output layer, whose few inputs (a hidden layer of ~10–100 units) feed tens of thousands of
    outputs.

    ``nn.Linear`` keeps ``(out, in)``: for this shape its rows are ``in`` floats long and the three
    products of a step (forward, weight gradient, input gradient) and the regularizer's Gram
    products all run on tall matrices with tiny rows or on transposed views of them, which BLAS
    serves at a fraction of the speed of long contiguous rows (about half, measured:
    docs/performance.md, "The output layer's layout"). Stored transposed, every one of these
    products reads its operands row-major, and the weight gradient ``xᵀ·g`` comes out in the
    weight's own layout. Checkpoints written with the ``nn.Linear`` layout (module version 1)
    load transposed (:func:`output_layer_transposed` says when).
    """

    _version = 2  # 1: nn.Linear's (out, in) layout

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.fold()
        self.reset_parameters()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.fold()  # copy.deepcopy gives each parameter its own storage

    @torch.no_grad()
    def fold(self) -> None:
        """Put the bias in memory right after the weight's last row, so ``[W; b]`` is one
        ``(in + 1, out)`` matrix (:meth:`folded`): the forward is then one product of ``[x, 1]``
        with it, and the backward one product for both gradients, instead of a product plus a
        broadcast copy of the bias and a sum over the batch for its gradient (split_fmnist:
        ≈ 0.1 ms of a 3–6 ms step). Called again after every move (``.to``, ``.double``); the
        parameters stay two tensors, so checkpoints and optimizers see no difference."""
        if self.folded() is None and self.weight.device == self.bias.device:
            joint = torch.cat([self.weight.data, self.bias.data.to(self.weight.dtype)[None]])
            self.weight.data, self.bias.data = joint[:-1], joint[-1]

    def folded(self) -> Tensor | None:
        """``[W; b]`` as one matrix (detached) if this layer computes with its own parameters
        laid out by :meth:`fold`; None otherwise (``functional_call`` with other tensors, such
        as ``Θ + ΔΘ`` or stacked seeds under ``vmap``: those take ``addmm``)."""
        w, b = self.weight, self.bias
        if type(w) is not nn.Parameter or type(b) is not nn.Parameter or w.dim() != 2:
            return None
        if not w.is_contiguous() or w.dtype != b.dtype or b.stride() != (1,):
            return None
        if b.data_ptr() != w.data_ptr() + w.numel() * w.element_size():
            return None
        return w.detach().as_strided((w.shape[0] + 1, w.shape[1]), w.stride())

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.fold()  # a move gives each parameter its own storage: join them again
        return self

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialisation, drawn in its ``(out, in)`` layout and stored
        transposed: the same random draws in the same order as ``nn.Linear(in, out)``, so a
        seed's initial hypernetwork is the one it was before the layout changed."""
        lin = nn.Linear(*self.weight.shape, device=self.weight.device)
        self.weight.copy_(lin.weight.T)
        self.bias.copy_(lin.bias)

    @torch.no_grad()
    def xavier_uniform_(self) -> None:
        """Xavier-uniform weights drawn in ``nn.Linear``'s ``(out, in)`` layout and stored
        transposed: the draws a plain ``nn.Linear`` output layer would get from the same seed."""
        self.weight.copy_(nn.init.xavier_uniform_(self.weight.new_empty(self.weight.shape[::-1])).T)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            joint = self.folded()
            if joint is not None:
                return FoldedLinear.apply(x, self.weight, self.bias, joint)
            return torch.addmm(self.bias, x, self.weight)
        return x @ self.weight + self.bias

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        key = prefix + "weight"
        if key in state_dict:
            w = state_dict[key]
            version = local_metadata.get("version")  # None: a dict without torch's metadata
            old = version < 2 if version is not None else w.shape != self.weight.shape
            if old:
                state_dict[key] = w.T
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)
        self.fold()  # assign=True replaced the folded tensors (an ordinary load copies in place)


class FoldedLinear(torch.autograd.Function):
    """``x W + b`` as ``[x, 1] · joint`` for ``joint = [W; b]`` (:meth:`WideLinear.folded`);
    differentiable in ``x``, ``weight`` and ``bias``, whose values ``joint`` holds."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, joint: Tensor) -> Tensor:
        x1 = torch.cat([x, x.new_ones(x.shape[0], 1)], 1)
        ctx.save_for_backward(x1, weight)
        return x1 @ joint

    @staticmethod
    def backward(ctx, grad: Tensor):
        x1, weight = ctx.saved_tensors
        grad_x = grad @ weight.T if ctx.needs_input_grad[0] else None
        grad_joint = x1.T @ grad  # the weight's and the bias's gradients in one product
        return grad_x, grad_joint[:-1], grad_joint[-1], None


def output_layer_transposed(hnet: Any, state_dict: dict, prefix: str = "") -> bool:
    """Whether ``state_dict`` (of ``hnet``, or of a module holding it under ``prefix``) stores
    the output layer in ``nn.Linear``'s layout, so state kept elsewhere in that layout (optimizer
    moments, frozen regularizer weights) must be transposed too."""
    layer = prefix + hnet.output_layer()[0].rsplit(".", 1)[0]
    return getattr(state_dict, "_metadata", {}).get(layer, {}).get("version", 1) < 2


def upgrade_checkpoint(
    hnet: Any,
    hnet_state: dict[str, Tensor],
    theta_opt: dict[str, Any] | None,
    frozen: dict[str, Tensor],
    prefix: str = "",
) -> tuple[dict[str, Any] | None, dict[str, Tensor]]:
    """``(theta optimizer state_dict, regularizer frozen state)`` in the current layout;
    unchanged unless ``hnet_state`` was written with the old one. The optimizer is the one over
    ``hnet.theta()`` in that order; ``prefix`` is the hypernetwork's own in ``hnet_state``
    (a module's state_dict that contains it)."""
    if not output_layer_transposed(hnet, hnet_state, prefix):
        return theta_opt, frozen
    name = hnet.output_layer()[0]
    if theta_opt is not None:
        index = list(hnet.theta()).index(name)
        state = dict(theta_opt["state"])
        if index in state:
            state[index] = {
                k: v.T.contiguous() if k in ("exp_avg", "exp_avg_sq") else v
                for k, v in state[index].items()
            }
        theta_opt = {**theta_opt, "state": state}
    frozen = {k: v.T.contiguous() if k in ("W", f"theta.{name}") else v for k, v in frozen.items()}
    return theta_opt, frozen
