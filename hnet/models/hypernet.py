"""Task-conditioned hypernetworks (docs/method.md).

Both variants map a batch of task embeddings ``(E, d_e)`` to flat target weights ``(E, N)``.
Task embeddings live in the module (one ``nn.Parameter`` each, so each task gets its own
optimizer) but are *inputs* of ``forward``; the output regularizer can therefore evaluate the
hypernetwork functionally at shifted parameters ``Θ + ΔΘ`` (lookahead) with ``functional_call``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hnet.models.target import activation


def mlp(dims: list[int], act: str) -> nn.Sequential:
    """Linear layers with ``act`` between them and a linear output layer."""
    seq = nn.Sequential()
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        seq.add_module(f"fc{i}", nn.Linear(a, b))
        if i < len(dims) - 2:
            seq.add_module(f"act{i}", activation(act))
    return seq


class WideLinear(nn.Module):
    """``y = x W + b`` with ``W`` stored as ``(in_features, out_features)``: the hypernetwork's
    output layer, whose few inputs (a hidden layer of ~10–100 units) feed tens of thousands of
    outputs.

    ``nn.Linear`` keeps ``(out, in)``: for this shape its rows are ``in`` floats long and the three
    products of a step (forward, weight gradient, input gradient) and the regularizer's Gram
    products all run on tall matrices with tiny rows or on transposed views of them, which BLAS
    serves at a fraction of the speed of long contiguous rows (about half, measured:
    docs/development.md, "The output layer's layout"). Stored transposed, every one of these
    products reads its operands row-major, and the weight gradient ``xᵀ·g`` comes out in the
    weight's own layout. Checkpoints written with the ``nn.Linear`` layout (module version 1)
    load transposed (:func:`hnet.models.hypernet.output_layer_transposed` says when).
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


def output_layer_transposed(hnet: HyperNetwork, state_dict: dict, prefix: str = "") -> bool:
    """Whether ``state_dict`` (of ``hnet``, or of a module holding it under ``prefix``) stores
    the output layer in ``nn.Linear``'s layout, so state kept elsewhere in that layout (optimizer
    moments, frozen regularizer weights) must be transposed too."""
    layer = prefix + hnet.output_layer()[0].rsplit(".", 1)[0]
    return getattr(state_dict, "_metadata", {}).get(layer, {}).get("version", 1) < 2


def wide_mlp(dims: list[int], act: str) -> nn.Sequential:
    """:func:`mlp` whose output layer is a :class:`WideLinear`."""
    seq = mlp(dims[:-1], act)
    if len(dims) > 2:
        seq.add_module(f"act{len(dims) - 3}", activation(act))
    seq.add_module(f"fc{len(dims) - 2}", WideLinear(dims[-2], dims[-1]))
    return seq


class HyperNetwork(nn.Module):
    """Common part: task embeddings, initialisation, parameter accounting."""

    def __init__(self, target_numel: int, n_tasks: int, task_emb: int) -> None:
        super().__init__()
        self.target_numel = target_numel
        self.task_embs = nn.ParameterList(
            [nn.Parameter(torch.empty(task_emb)) for _ in range(n_tasks)]
        )

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Xavier-uniform for ≥2-D weights, zero biases, then embeddings N(0, 1)."""
        for name, p in self.named_parameters():
            if name.startswith("task_embs") or name == "chunk_embs":
                continue
            if name == self.output_layer()[0] and isinstance(self.net[-1], WideLinear):
                # drawn in the (out, in) layout, as for nn.Linear (see WideLinear)
                p.copy_(nn.init.xavier_uniform_(p.new_empty(p.shape[::-1])).T)
            elif p.dim() >= 2:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
        for name, p in self.named_parameters():
            if name.startswith("task_embs") or name == "chunk_embs":
                p.normal_(0.0, 1.0)

    def theta(self) -> dict[str, nn.Parameter]:
        """Θ_h: every trainable parameter except the task embeddings (chunk embeddings included)."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("task_embs")}

    def output_layer(self) -> tuple[str, str]:
        """Names of the linear output layer's weight and bias (the regularizer's Gram path)."""
        last = [n for n, _ in self.net.named_children()][-1]
        return f"net.{last}.weight", f"net.{last}.bias"

    def layout(self) -> tuple[int, int, int]:
        """``(n_chunks, chunk_size, length of the last chunk)``; a full hypernet is one chunk."""
        return 1, self.target_numel, self.target_numel

    @property
    def padding(self) -> int:
        """Unused outputs after the target's weights in ``forward(..., padded=True)``."""
        n_chunks, chunk_size, _ = self.layout()
        return n_chunks * chunk_size - self.target_numel

    def features(self, embs: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        """The output layer's input ``(E, C, h)`` for the embeddings ``embs``, with ``params``
        (by name, as in :meth:`theta`) in place of the module's own parameters where given. The
        regularizer's Θ + ΔΘ takes this path rather than ``functional_call``, which swaps every
        module attribute in and out (≈ 50 µs of a 3–6 ms split_fmnist step)."""
        params = params or {}
        h = self.body_input(embs, params)
        for name, layer in list(self.net.named_children())[:-1]:
            weight, bias = f"net.{name}.weight", f"net.{name}.bias"
            if isinstance(layer, nn.Linear) and (weight in params or bias in params):
                h = F.linear(h, params.get(weight, layer.weight), params.get(bias, layer.bias))
            else:  # its own parameters (hooks run), or an activation
                h = layer(h)
        return h

    def body_input(self, embs: Tensor, params: dict[str, Tensor]) -> Tensor:
        """What the first layer sees, ``(E, C, d)``."""
        raise NotImplementedError

    def embeddings(self, tasks: list[int] | Tensor) -> Tensor:
        """The embeddings of ``tasks`` (ids on the host), stacked; only these get gradients."""
        ids = tasks.tolist() if isinstance(tasks, Tensor) else tasks
        return torch.stack([self.task_embs[t] for t in ids])

    def num_params(self) -> int:
        """Trainable hypernetwork parameters incl. task and chunk embeddings."""
        return sum(p.numel() for p in self.parameters())

    def compression_ratio(self) -> float:
        return self.num_params() / self.target_numel


class FullHypernet(HyperNetwork):
    """HMLP: one MLP from the task embedding to every target weight."""

    def __init__(
        self, target_numel: int, n_tasks: int, task_emb: int, hidden: list[int], act: str = "relu"
    ) -> None:
        super().__init__(target_numel, n_tasks, task_emb)
        self.net = wide_mlp([task_emb, *hidden, target_numel], act)
        self.reset_parameters()

    def forward(self, embs: Tensor, features: bool = False, padded: bool = False) -> Tensor:
        """Flat weights ``(E, N)``, or with ``features`` the output layer's input ``(E, 1, h)``
        (``padded``: no padding to leave on)."""
        if features:
            return self.features(embs)
        return self.net(embs)

    def body_input(self, embs: Tensor, params: dict[str, Tensor]) -> Tensor:
        return embs.unsqueeze(1)


class ChunkedHypernet(HyperNetwork):
    """Chunked HMLP: ``[e_t, c_i] → chunk i`` for learned, shared chunk embeddings ``c_i``.

    All chunks of all requested tasks are one batch of ``E × n_chunks`` rows; the last chunk
    only computes the outputs it needs. The MLP's output layer has ``chunk_size`` units, so the
    hypernetwork can be much smaller than the target (the compressive regime).
    """

    def __init__(
        self,
        target_numel: int,
        n_tasks: int,
        task_emb: int,
        hidden: list[int],
        chunk_size: int,
        chunk_emb: int,
        act: str = "relu",
    ) -> None:
        super().__init__(target_numel, n_tasks, task_emb)
        self.chunk_size = chunk_size
        self.n_chunks = math.ceil(target_numel / chunk_size)
        self.chunk_embs = nn.Parameter(torch.empty(self.n_chunks, chunk_emb))
        self.net = wide_mlp([task_emb + chunk_emb, *hidden, chunk_size], act)
        self.reset_parameters()

    def body_input(self, embs: Tensor, params: dict[str, Tensor]) -> Tensor:
        """``[e_t, c_i]`` for every task and chunk."""
        e, c = embs.shape[0], self.n_chunks
        chunk_embs = params.get("chunk_embs", self.chunk_embs)
        return torch.cat(
            [embs.unsqueeze(1).expand(e, c, -1), chunk_embs.unsqueeze(0).expand(e, c, -1)], dim=-1
        )

    def layout(self) -> tuple[int, int, int]:
        return (
            self.n_chunks,
            self.chunk_size,
            self.target_numel - (self.n_chunks - 1) * self.chunk_size,
        )

    def forward(self, embs: Tensor, features: bool = False, padded: bool = False) -> Tensor:
        """Flat weights ``(E, N)``, or with ``features`` the output layer's input ``(E, C, h)``;
        ``padded`` leaves the last chunk's unused outputs on, ``(E, N + padding)``, for a caller
        that splits the weights up anyway (:func:`hnet.models.target.functional_forward`'s
        ``pad``): one split, so one concatenation in the backward instead of two."""
        e, c = embs.shape[0], self.n_chunks
        h = self.features(embs)
        if features:
            return h
        # One product over all chunks of all tasks, the last chunk padded: its unused outputs
        # cost ~1 % of the product, less than computing the last chunk separately and
        # concatenating (split_fmnist, task 1, alternating: 11.4 / 11.7 vs 14.6 / 14.6 ms per
        # step). The padding is cut off by a split, not a slice: a split's backward writes the
        # padded gradient once (one concatenation with zeros for the cut part), a slice's
        # zero-fills all of it and then copies the gradient in.
        out = self.net[-1](h.reshape(e * c, h.shape[-1])).reshape(e, c * self.chunk_size)
        pad = self.padding
        return out.split([self.target_numel, pad], 1)[0] if pad and not padded else out


def build_hypernet(arch: dict, target_numel: int, n_tasks: int) -> HyperNetwork:
    """Hypernetwork from a resolved size (see :mod:`hnet.models.sizes`)."""
    if arch["chunked"]:
        return ChunkedHypernet(
            target_numel,
            n_tasks,
            arch["task_emb"],
            list(arch["hidden"]),
            arch["chunk_size"],
            arch["chunk_emb"],
            arch["activation"],
        )
    return FullHypernet(
        target_numel, n_tasks, arch["task_emb"], list(arch["hidden"]), arch["activation"]
    )
