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
    ``A'`` whose first ``w`` rows hold ``W*`` (written once; each step rewrites the others in
    place, and autograd's version check stops a backward that would read a later step's rows).
    """

    def __init__(self, frozen_w: Tensor, frozen_b: Tensor, last: int) -> None:
        w, cs = frozen_w.shape
        head = frozen_w[:, :last]
        tail = frozen_w[:, last:] if last < cs else None
        self.star = (head @ head.T, None if tail is None else tail @ tail.T)
        self.last = last
        self.a = frozen_w.new_empty(2 * w + 1, cs)
        self.a[:w] = frozen_w
        self.frozen_b = frozen_b


class OutputGram(torch.autograd.Function):
    """``L`` above, differentiable in the features ``h`` ``(E, C, w)`` and the layer's ``weight``
    ``(w, cs)`` and ``bias`` ``(cs,)``; everything else is a constant of the task."""

    @staticmethod
    def forward(
        ctx,
        h: Tensor,
        weight: Tensor,
        bias: Tensor,
        h0: Tensor,
        state: GramState,
        shift_w: Tensor | None,
        shift_b: Tensor | None,
    ) -> Tensor:
        w, a, last, star = weight.shape[0], state.a, state.last, state.star
        torch.sub(weight, a[:w], out=a[w : 2 * w])  # A' = [W*; W − W* + ΔW; b − b* + Δb]
        torch.sub(bias, state.frozen_b, out=a[2 * w])
        if shift_w is not None:
            a[w : 2 * w].add_(shift_w)
        if shift_b is not None:
            a[2 * w].add_(shift_b)
        z = torch.cat([h - h0, h, h.new_ones(*h.shape[:-1], 1)], -1)  # (E, C, 2w+1)
        full = z[:, :-1].reshape(-1, z.shape[-1])
        m_last = z[:, -1].T @ z[:, -1]
        m_full = full.T @ full
        g_head = _gram(a[:, :last], star[0], w)
        loss = (g_head * (m_full + m_last)).sum()
        g_tail = None
        if star[1] is not None:
            g_tail = _gram(a[:, last:], star[1], w)
            loss = loss + (g_tail * m_full).sum()
        ctx.save_for_backward(a, z, g_head, g_tail, m_full, m_last)
        ctx.last = last
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, z, g_head, g_tail, m_full, m_last = ctx.saved_tensors
        w, last = (a.shape[0] - 1) // 2, ctx.last
        two = 2 * grad
        m_all = m_full + m_last
        if g_tail is None:  # every chunk uses every column
            grad_a = (two * m_all[w:]) @ a
        else:  # each column block once, written in place (BLAS takes the strided rows as they are)
            grad_a = a.new_empty(w + 1, a.shape[1])
            grad_a[:, :last].addmm_(two * m_all[w:], a[:, :last], beta=0)
            grad_a[:, last:].addmm_(two * m_full[w:], a[:, last:], beta=0)
        g_full = g_head if g_tail is None else g_head + g_tail
        grad_z = torch.cat(
            [z[:, :-1] @ (two * g_full), (z[:, -1] @ (two * g_head)).unsqueeze(1)], 1
        )
        grad_h = grad_z[..., :w] + grad_z[..., w : 2 * w]
        return grad_h, grad_a[:w], grad_a[w], None, None, None, None


def _gram(cols: Tensor, star: Tensor, w: int) -> Tensor:
    """``A'A'ᵀ`` over some columns from its constant corner ``W*W*ᵀ`` (``star``) and one product
    of the shifted rows with all rows."""
    k = cols[w:] @ cols.T  # (w+1, 2w+1)
    return torch.cat([torch.cat([star, k[:, :w].T], 1), k])
