"""Task-conditioned hypernetworks (von Oswald et al., 2020, §2; docs/method.md).

A hypernetwork ``f_h(e, Θ_h)`` maps a task embedding ``e`` to *all* weights of the target
network. Two variants, both mapping a batch of embeddings ``(E, d_e)`` to flat target weights
``(E, N)``:

* :class:`FullHypernet` (HMLP): one MLP, ``e → Θ_trgt``.
* :class:`ChunkedHypernet`: the same MLP, applied per chunk to ``[e, c_i]`` with learned chunk
  embeddings ``c_i``, so its output layer produces one chunk at a time and the hypernetwork can
  be smaller than its target (the compressive regime).

Task embeddings live in the module (one ``nn.Parameter`` each, so each task gets its own
optimizer) but are *inputs* of ``forward``: the output regularizer evaluates the hypernetwork
at shifted parameters ``Θ + ΔΘ`` (lookahead) for the embeddings of earlier tasks. The output
layer is :class:`hnet.fast.output_layer.WideLinear`, ``nn.Linear`` laid out for speed.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hnet.fast.output_layer import WideLinear
from hnet.models.target import activation


def mlp(dims: list[int], act: str, output: type[nn.Module] = nn.Linear) -> nn.Sequential:
    """Linear layers with ``act`` between them and a linear ``output`` layer."""
    seq = nn.Sequential()
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layer = output if i == len(dims) - 2 else nn.Linear
        seq.add_module(f"fc{i}", layer(a, b))
        if i < len(dims) - 2:
            seq.add_module(f"act{i}", activation(act))
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
            if name == self.output_layer()[0] and hasattr(self.net[-1], "xavier_uniform_"):
                self.net[-1].xavier_uniform_()  # WideLinear: the draws of a plain nn.Linear
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
        (by name, as in :meth:`theta`) in place of the module's own parameters where given: the
        regularizer evaluates the body at Θ + ΔΘ this way (cheaper than ``functional_call``)."""
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
        self.net = mlp([task_emb, *hidden, target_numel], act, output=WideLinear)
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

    All chunks of all requested tasks are one batch of ``E × n_chunks`` rows; the last chunk's
    unused outputs are cut off. The MLP's output layer has ``chunk_size`` units, so the
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
        self.net = mlp([task_emb + chunk_emb, *hidden, chunk_size], act, output=WideLinear)
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
        # one product over all chunks of all tasks, the last chunk padded (docs/performance.md)
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
