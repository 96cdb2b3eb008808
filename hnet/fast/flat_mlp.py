"""A ReLU MLP target on one flat weight vector, as one autograd function.

The plain version is :func:`hnet.models.target.functional_forward`'s ``functional_call`` of the
:class:`~hnet.models.target.MLP` on the weights split into its layers. Through that path the
layers' gradients come back as separate tensors that the backward of the weights' ``split``
then concatenates: one more pass over all target weights (2 MB on split_fmnist, 7 MB on PM-10)
and a dozen autograd nodes per step. :class:`FlatMLP` writes every weight's gradient straight
into one flat gradient (``out=`` views), with the same products in the same order: outputs
are bitwise those of the plain path, gradients too where BLAS picks the same kernels (within
an ulp elsewhere; ``tests/unit/test_models.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

Layout = tuple[tuple[int, int, int, int], ...]


def layout(net: nn.Module) -> Layout:
    """Per layer ``(weight offset, out, in, bias offset)`` in the flat weight vector of an
    MLP target (each layer's weight, then its bias); computed once per net."""
    cached = net.__dict__.get("_flat_layout")
    if cached is None:
        layers, offset = [], 0
        for layer in [*net.body.children(), net.head]:
            if isinstance(layer, nn.Linear):
                out, inp = layer.weight.shape
                layers.append((offset, out, inp, offset + out * inp))
                offset += out * inp + out
        cached = net.__dict__["_flat_layout"] = tuple(layers)
    return cached


def numel(net: nn.Module) -> int:
    """The weights the layout covers: the head's bias ends them."""
    _, out, _, b = layout(net)[-1]
    return b + out


def relu_only(net: nn.Module) -> bool:
    """Whether every activation of the body is a ReLU (what :class:`FlatMLP` computes);
    asked every training step, so answered once per net."""
    cached = net.__dict__.get("_relu_only")
    if cached is None:
        acts = [m for m in net.body.children() if not isinstance(m, nn.Linear)]
        cached = net.__dict__["_relu_only"] = all(type(m) is nn.ReLU for m in acts)
    return cached


def applies(net: nn.Module, flat: Tensor, x: Tensor) -> bool:
    """Whether :class:`FlatMLP` computes the MLP ``net`` on these tensors: ReLU activations,
    one weight vector, inputs without gradient, no ``torch.func`` transform (``vmap`` of the
    packed seeds and of task inference) around the call."""
    return (
        flat.dim() == 1
        and not x.requires_grad
        and relu_only(net)
        and not torch._C._functorch.is_functorch_wrapped_tensor(flat)
    )


def forward(net: nn.Module, flat: Tensor, x: Tensor) -> Tensor:
    """The MLP ``net`` on ``x`` with the weights ``flat`` (:func:`numel` of them, then any
    padding)."""
    return FlatMLP.apply(flat, x, layout(net), numel(net))


class FlatMLP(torch.autograd.Function):
    """The ReLU MLP of ``layout`` on ``flat[:n]``; its backward writes one flat gradient."""

    @staticmethod
    def forward(ctx, flat: Tensor, x: Tensor, layout: Layout, n: int) -> Tensor:
        h, inputs = x.flatten(1), []
        for i, (w, out, inp, b) in enumerate(layout):
            inputs.append(h)
            h = torch.addmm(flat[b : b + out], h, flat[w : w + out * inp].view(out, inp).t())
            if i < len(layout) - 1:
                h = h.relu_()  # ReLU's backward needs only its output: keep one tensor
        ctx.save_for_backward(flat, *inputs)
        ctx.layout, ctx.n = layout, n
        return h

    @staticmethod
    def backward(ctx, grad: Tensor):
        flat, *inputs = ctx.saved_tensors
        out_grad = torch.empty_like(flat)
        out_grad[ctx.n :].zero_()  # a chunked hypernetwork's padding
        for i in reversed(range(len(ctx.layout))):
            w, out, inp, b = ctx.layout[i]
            torch.mm(grad.t(), inputs[i], out=out_grad[w : w + out * inp].view(out, inp))
            torch.sum(grad, 0, out=out_grad[b : b + out])
            if i > 0:  # through the layer and the ReLU before it (no gradient for x)
                grad = grad @ flat[w : w + out * inp].view(out, inp)
                grad = torch.ops.aten.threshold_backward(grad, inputs[i], 0)
        return out_grad, None, None, None
