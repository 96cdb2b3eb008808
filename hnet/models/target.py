"""Target networks, used two ways.

* Baselines own their weights: a target net is an ordinary ``nn.Module``.
* A hypernetwork generates *all* of its weights: the net is built on the ``meta`` device (so it
  holds no storage and nothing trainable) and applied with :func:`functional_forward`, which
  maps a flat weight vector onto the module's parameter shapes via ``torch.func.functional_call``.
  A leading batch dimension of weight vectors (one per task embedding) is vmapped, so task
  inference runs every embedding in one call.

Every target net has a final ``nn.Linear`` called ``head`` with ``n_heads * head_size`` outputs:
one block of ``head_size`` units per task (multi-head, CL1) or one shared block (CL2).
Keeping this convention lets the regularizer mask other tasks' heads for any architecture.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected target network: ``in_dim → hidden… → n_heads × head_size``."""

    def __init__(
        self,
        in_dim: int,
        hidden: list[int],
        head_size: int,
        n_heads: int = 1,
        activation_name: str = "relu",
    ) -> None:
        super().__init__()
        self.head_size, self.n_heads = head_size, n_heads
        dims = [in_dim, *hidden]
        self.body = nn.Sequential()
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            self.body.add_module(f"fc{i}", nn.Linear(a, b))
            self.body.add_module(f"act{i}", activation(activation_name))
        self.head = nn.Linear(dims[-1], head_size * n_heads)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def param_shapes(net: nn.Module) -> list[tuple[str, torch.Size]]:
    """Names and shapes of every parameter, in the order a flat weight vector lays them out."""
    return [(name, p.shape) for name, p in net.named_parameters()]


def num_weights(net: nn.Module) -> int:
    return sum(math.prod(shape) for _, shape in param_shapes(net))


def unflatten(net: nn.Module, flat: Tensor) -> dict[str, Tensor]:
    """Flat ``(..., N)`` weights → ``{name: (..., *shape)}`` views (no copy)."""
    out, start = {}, 0
    lead = flat.shape[:-1]
    for name, shape in param_shapes(net):
        n = math.prod(shape)
        out[name] = flat[..., start : start + n].reshape(*lead, *shape)
        start += n
    if start != flat.shape[-1]:
        raise ValueError(f"flat weights have {flat.shape[-1]} entries, the net needs {start}")
    return out


def functional_forward(net: nn.Module, flat: Tensor, x: Tensor) -> Tensor:
    """Run ``net`` on ``x`` with generated weights.

    ``flat`` is ``(N,)`` → output ``(B, out)``; or ``(E, N)`` → ``(E, B, out)``, one output per
    weight vector, computed in a single vmapped call.
    """
    if flat.dim() == 1:
        return functional_call(net, unflatten(net, flat), (x,))
    return vmap(lambda w: functional_call(net, unflatten(net, w), (x,)))(flat)


def head_outputs(logits: Tensor, net: nn.Module, task: int) -> Tensor:
    """The ``head_size`` outputs of ``task``'s head (of the shared head if there is only one)."""
    h = 0 if net.n_heads == 1 else task
    return logits[..., h * net.head_size : (h + 1) * net.head_size]


def other_heads_mask(net: nn.Module, task: int) -> Tensor:
    """Bool mask over the flat weights: False on the head units of every task except ``task``.

    Used by the optional head masking of the output regularizer (docs/method.md): a previous
    task's regularized output ignores heads it never used.
    """
    parts = []
    lo, hi = task * net.head_size, (task + 1) * net.head_size
    for name, shape in param_shapes(net):
        m = torch.ones(shape, dtype=torch.bool)
        if name.startswith("head.") and net.n_heads > 1:
            m[:] = False
            m[lo:hi] = True
        parts.append(m.flatten())
    return torch.cat(parts)


def build_target(cfg_target: dict, in_dim: int, head_size: int, n_heads: int) -> nn.Module:
    """Target net from the job config's ``target`` section (MLP today; conv nets plug in here)."""
    kind = cfg_target.get("kind", "mlp")
    if kind != "mlp":
        raise ValueError(f"unknown target kind {kind!r}")
    return MLP(in_dim, list(cfg_target["hidden"]), head_size, n_heads, cfg_target["activation"])
