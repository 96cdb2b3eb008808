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

Kinds (:func:`build_target`): ``mlp`` (here), ``resnet32`` (:mod:`hnet.models.resnet`) and
``zenke`` (:mod:`hnet.models.zenke`). ResNet-32 has BatchNorm, whose running statistics are not
generated but kept per task by the caller and passed to :func:`functional_forward`
(:mod:`hnet.models.batchnorm`).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from hnet.errors import ConfigError
from hnet.fast import flat_mlp
from hnet.models.batchnorm import has_batchnorm, unflatten_stats
from hnet.models.resnet import ResNet32
from hnet.models.zenke import ZenkeNet

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected target network: ``in_dim → hidden… → n_heads × head_size``. Image rows
    ``(B, C, H, W)`` are flattened (flat rows pass unchanged)."""

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
        return self.head(self.body(x.flatten(1)))


def param_shapes(net: nn.Module) -> list[tuple[str, torch.Size]]:
    """Names and shapes of every parameter, in the order a flat weight vector lays them out."""
    return [(name, p.shape) for name, p in net.named_parameters()]


def num_weights(net: nn.Module) -> int:
    """Parameters only: what a hypernetwork generates (BatchNorm running stats are buffers)."""
    return sum(math.prod(shape) for _, shape in param_shapes(net))


def unflatten(net: nn.Module, flat: Tensor, pad: int = 0) -> dict[str, Tensor]:
    """Flat ``(..., N + pad)`` weights → ``{name: (..., *shape)}`` views (no copy); the last
    ``pad`` entries are left out (a chunked hypernetwork's padding).

    One ``split`` rather than a slice per parameter: the backward of a split is a single
    concatenation, while each slice's backward would allocate and zero-fill a gradient of the
    whole flat vector and add them up (a large share of a small net's step time)."""
    shapes = param_shapes(net)
    sizes = [math.prod(shape) for _, shape in shapes]
    check_length(flat, sum(sizes), pad)
    lead = flat.shape[:-1]
    parts = flat.split([*sizes, pad] if pad else sizes, dim=-1)[: len(sizes)]
    return {name: t.reshape(*lead, *shape) for (name, shape), t in zip(shapes, parts, strict=True)}


def check_length(flat: Tensor, needed: int, pad: int) -> None:
    if needed + pad != flat.shape[-1]:
        raise ValueError(
            f"flat weights have {flat.shape[-1]} entries, the net needs {needed}"
            + (f" plus {pad} of padding" if pad else "")
        )


def functional_forward(
    net: nn.Module,
    flat: Tensor,
    x: Tensor,
    stats: Tensor | None = None,
    train: bool = False,
    pad: int = 0,
) -> Tensor:
    """Run ``net`` on ``x`` with generated weights.

    ``flat`` is ``(N,)`` → output ``(B, out)``; or ``(E, N)`` → ``(E, B, out)``, one output per
    weight vector, computed in a single vmapped call.

    Nets with BatchNorm also need ``stats``, a flat set of running statistics
    (:mod:`hnet.models.batchnorm`): ``(S,)``, or with ``(E, N)`` weights ``(E, S)`` for one set
    per weight vector (task inference evaluates every embedding with its own task's set) or
    ``(S,)`` shared by all. ``train`` selects the module mode for this call (restored after):
    BatchNorm then normalises with batch statistics and updates ``stats`` in place (momentum
    0.1), and dropout is active (independent masks per weight vector); in eval mode ``stats``
    is only read. Train mode with ``(E, N)`` weights and stats loops over the vectors instead of
    vmapping, because under ``vmap`` BatchNorm does not write its running statistics back.
    ``pad``: ``flat`` ends with that many unused entries (:func:`unflatten`).
    """
    check_stats(net, flat, stats, train)
    was_training = net.training
    net.train(train)
    try:
        if flat.dim() == 1:
            return _call(net, flat, stats, x, pad)
        if train and stats is not None:  # vmap's batch-norm rule drops running-stat updates
            return torch.stack([_call(net, w, s, x, pad) for w, s in zip(flat, stats, strict=True)])
        stats_dim = None if stats is None or stats.dim() == 1 else 0
        run = vmap(
            lambda w, s: _call(net, w, s, x, pad), in_dims=(0, stats_dim), randomness="different"
        )
        return run(flat, stats)
    finally:
        net.train(was_training)


def _call(net: nn.Module, flat: Tensor, stats: Tensor | None, x: Tensor, pad: int = 0) -> Tensor:
    if type(net) is MLP and flat_mlp.applies(net, flat, x):  # the same function, faster
        check_length(flat, flat_mlp.numel(net), pad)
        return flat_mlp.forward(net, flat, x)
    tensors = unflatten(net, flat, pad)
    if stats is not None:
        tensors.update(unflatten_stats(net, stats))
    return functional_call(net, tensors, (x,))


def check_stats(net: nn.Module, flat: Tensor, stats: Tensor | None, train: bool) -> None:
    """Fail early, with a message, on statistics that do not fit the weights."""
    if stats is None:
        if has_batchnorm(net):
            raise ValueError(
                "the target net has BatchNorm: pass the task's running statistics as `stats` "
                "(see hnet.models.batchnorm.init_stats)"
            )
        return
    if stats.dim() > flat.dim():
        raise ValueError(f"stats {tuple(stats.shape)} have more dimensions than the weights")
    if stats.dim() == 2 and stats.shape[0] != flat.shape[0]:
        raise ValueError(f"{stats.shape[0]} sets of stats for {flat.shape[0]} weight vectors")
    if train and flat.dim() == 2 and stats.dim() == 1:
        raise ValueError("train mode with (E, N) weights needs one set of stats per vector (E, S)")


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


TARGET_KINDS = ("mlp", "resnet32", "zenke")


def check_target_kind(cfg_target: dict) -> str:
    """The target network's ``kind`` (default ``mlp``), or a ConfigError naming the choices.
    Config resolution calls it too, so ``hnet train --print-config`` and a study's check refuse
    what the job would refuse, with the same message."""
    import difflib

    kind = cfg_target.get("kind", "mlp")
    if kind not in TARGET_KINDS:
        close = difflib.get_close_matches(str(kind), TARGET_KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"target.kind={kind!r} is not a target network; choose one of "
            f"{', '.join(TARGET_KINDS)}.{hint}"
        )
    return kind


def build_target(
    cfg_target: dict,
    in_dim: int,
    head_size: int,
    n_heads: int,
    in_shape: tuple[int, int, int] | None = None,
) -> nn.Module:
    """Target net from the job config's ``target`` section, by ``kind`` (default ``mlp``).

    Conv nets need the image shape ``(C, H, W)``: ``in_shape`` if given, else
    ``cfg_target["in_shape"]``; it must agree with ``in_dim`` (they accept flat inputs too).
    """
    kind = check_target_kind(cfg_target)
    if kind == "mlp":
        return MLP(in_dim, list(cfg_target["hidden"]), head_size, n_heads, cfg_target["activation"])
    shape = image_shape(cfg_target, in_dim, in_shape)
    if kind == "resnet32":
        return ResNet32(shape, head_size, n_heads)
    dropout = tuple(cfg_target.get("dropout", (0.25, 0.5)))
    return ZenkeNet(shape, head_size, n_heads, dropout)


def image_shape(
    cfg_target: dict, in_dim: int | None, in_shape: tuple[int, int, int] | None
) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a conv target is built for, checked against the flat input size."""
    shape = in_shape if in_shape is not None else cfg_target.get("in_shape")
    if shape is None or len(shape) != 3:
        raise ConfigError(
            f"target.kind={cfg_target['kind']!r} is a convolutional network and needs image "
            f"inputs (C, H, W), but this benchmark's inputs have no image shape ({shape}). Use "
            "target.kind=mlp, or a benchmark of images (CIFAR, the MNIST family)."
        )
    shape = tuple(int(s) for s in shape)
    if in_dim is not None and math.prod(shape) != in_dim:
        raise ValueError(f"in_shape {shape} has {math.prod(shape)} entries, inputs have {in_dim}")
    return shape
