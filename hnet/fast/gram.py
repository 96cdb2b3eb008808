"""The regularizer's ``gram`` term: one autograd function with a hand-written backward.

The output layer ``y = Wᵀh + b`` (``W`` stored ``(w, cs)``: :class:`WideLinear`) is shared by
every chunk. With the current (lookahead-shifted) layer ``W' = W + ΔW``, ``b' = b + Δb`` and the
frozen one ``W*``, ``b*``, one chunk's change of outputs is a single product

    A'ᵀ z'    with    A' = [W*; W' − W*; b' − b*]   ((2w+1) × cs),    z' = [h − h*; h; 1]

and, summed over the rows ``r`` (tasks × chunks),

    Σ_r ‖A'ᵀ z'_r‖² = ⟨G, M⟩,    G = A' A'ᵀ,    M = Σ_r z'_r z'_rᵀ       (both (2w+1)²).

The last chunk of a task uses only its first ``last`` outputs. With ``G`` split by columns of
``A'`` into ``G_head`` ([:last]) and ``G_tail`` ([last:]) and ``M`` by rows into full and last
chunks:

    L = ⟨G_head, M_all⟩ + ⟨G_tail, M_full⟩
    ∂L/∂A'[:, :last] = 2 M_all A'[:, :last]      ∂L/∂A'[:, last:] = 2 M_full A'[:, last:]
    ∂L/∂z'_r = 2 G_r z'_r                         (G_head + G_tail for full chunks, G_head last)

``∂L/∂A'`` is needed only in the rows of ``W' − W*`` and ``b' − b*``, and those rows ARE the
gradients of ``W`` and ``b`` (``ΔW``, ``W*`` are constants). So a step costs two skinny products
over the chunk size forward (``G``'s two column blocks) and two backward, about ten operations
in all, where autograd over the same algebra took ~130 (splits, concatenations, transposed
gradients, sums of blocks). Every term of ``A'ᵀz'`` is a *difference* (``W*ᵀ(h − h*)``,
``(W' − W*)ᵀh``, ``b' − b*``): no cancellation of large numbers inside a row.
"""

from __future__ import annotations

import torch
from torch import Tensor


class GramState:
    """What the ``gram`` term keeps during one task: ``W* W*ᵀ`` over the head columns
    ``[:last]`` and the tail ``[last:]`` (None if empty), and the ``(2w+1) × cs`` buffer of
    ``A'`` whose first ``w`` rows hold ``W*`` (written once). Each step writes the other rows
    (:meth:`write_shift`, then the lookahead adds ``ΔW``, ``Δb`` into them in place), and
    autograd's version check stops a backward that would read a later step's rows.
    Packed seeds (:mod:`hnet.methods.common.packed`) give every tensor a leading seed axis."""

    def __init__(self, frozen_w: Tensor, frozen_b: Tensor, last: int) -> None:
        w, cs = frozen_w.shape[-2:]
        head = frozen_w[..., :last]
        tail = frozen_w[..., last:] if last < cs else None
        self.star = (head @ head.mT, None if tail is None else tail @ tail.mT)
        self.last = last
        self.a = frozen_w.new_empty(*frozen_w.shape[:-2], 2 * w + 1, cs)
        self.a[..., :w, :] = frozen_w
        self.frozen_b = frozen_b

    @torch.no_grad()
    def write_shift(self, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``W − W*`` and ``b − b*`` into ``A'`` and return those rows (views), for the
        lookahead to add ``ΔW`` and ``Δb`` to."""
        w = weight.shape[-2]
        rows_w, rows_b = self.a[..., w : 2 * w, :], self.a[..., 2 * w, :]
        torch.sub(weight, self.a[..., :w, :], out=rows_w)
        torch.sub(bias, self.frozen_b, out=rows_b)
        return rows_w, rows_b


class OutputGram(torch.autograd.Function):
    """``L`` above, differentiable in the features ``h`` ``(E, C, w)`` and the layer's ``weight``
    ``(w, cs)`` and ``bias`` ``(cs,)``; everything else is a constant of the task. ``weight``
    and ``bias`` enter for their gradients only: their (shifted) values are the rows of
    ``state.a`` that :meth:`GramState.write_shift` and the lookahead wrote before the call
    (:func:`hnet.methods.common.regularizer.gram_loss`). With a leading seed axis on every tensor
    (``(K, E, C, w)``, ``(K, w, cs)``, …) it returns one ``L`` per seed, ``(K,)``."""

    @staticmethod
    def forward(
        ctx, h: Tensor, weight: Tensor, bias: Tensor, h0: Tensor, state: GramState
    ) -> Tensor:
        w, a, last, star = weight.shape[-2], state.a, state.last, state.star
        z = torch.cat([h - h0, h, h.new_ones(*h.shape[:-1], 1)], -1)  # (…, E, C, 2w+1)
        full, end = z[..., :-1, :].flatten(-3, -2), z[..., -1, :]  # full chunks' rows, last's
        m_full = full.mT @ full
        m_all = m_full + end.mT @ end
        g_head = _gram(a[..., :last], star[0], w)
        loss = (g_head * m_all).sum((-2, -1))
        g_tail = None
        if star[1] is not None:
            g_tail = _gram(a[..., last:], star[1], w)
            loss = loss + (g_tail * m_full).sum((-2, -1))
        ctx.save_for_backward(a, z, g_head, g_tail, m_full, m_all)
        ctx.last = last
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, z, g_head, g_tail, m_full, m_all = ctx.saved_tensors
        w, last = (a.shape[-2] - 1) // 2, ctx.last
        two = 2 * grad[..., None, None]
        if g_tail is None:  # every chunk uses every column
            grad_a = (two * m_all[..., w:, :]) @ a
        else:  # each column block once, into one buffer
            grad_a = a.new_empty(*a.shape[:-2], w + 1, a.shape[-1])
            _product_into(grad_a[..., :last], two * m_all[..., w:, :], a[..., :last])
            _product_into(grad_a[..., last:], two * m_full[..., w:, :], a[..., last:])
        g_full = g_head if g_tail is None else g_head + g_tail
        grad_full = z[..., :-1, :] @ (two * g_full).unsqueeze(-3)  # over the task axis
        grad_end = z[..., -1, :] @ (two * g_head)
        grad_z = torch.cat([grad_full, grad_end.unsqueeze(-2)], -2)
        grad_h = grad_z[..., :w] + grad_z[..., w : 2 * w]
        return grad_h, grad_a[..., :w, :], grad_a[..., w, :], None, None


def _gram(cols: Tensor, star: Tensor, w: int) -> Tensor:
    """``A'A'ᵀ`` over some columns from its constant corner ``W*W*ᵀ`` (``star``) and one product
    of the shifted rows with all rows."""
    k = cols[..., w:, :] @ cols.mT  # (…, w+1, 2w+1)
    return torch.cat([torch.cat([star, k[..., :w].mT], -1), k], -2)


def _product_into(out: Tensor, m: Tensor, a: Tensor) -> None:
    """``out = m @ a`` written into ``out``, a block of columns of a larger matrix: BLAS takes
    its strided rows as they are (2-D); with a seed axis, a batched product and one copy."""
    if out.dim() == 2:
        out.addmm_(m, a, beta=0)
    else:
        out.copy_(m @ a)
