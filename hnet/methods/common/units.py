"""Hidden units of a target network, and gates on them: what HAT and XdG mask.

HAT (Serra et al. 2018) and XdG (Masse et al. 2018) multiply each hidden unit's output by a
per-task gate (a channel for convolutions). The target networks stay free of method logic: the
gates are applied by forward hooks on existing modules, and which modules carry the units, and
which parameters feed which units, is described here per architecture (:func:`unit_layout`).

Gate points, one per layer of units (the module whose output is multiplied channel-wise):

* ``MLP``: every hidden activation ``body.act{i}``.
* ``ZenkeNet``: the ReLU after each of the four convolutions and after the hidden FC layer
  (max-pool and dropout act per channel, so they commute with a channel gate).
* ``ResNet32``: the stem's BatchNorm, each block's inner BatchNorm (``a``) and each block's
  output (the block module itself). A gate g ≥ 0 before a ReLU is the same as after it
  (relu(g·x) = g·relu(x)), and gating a block's output gates the residual stream it writes.

For every parameter the layout names the gate of the units it writes (``post``) and of the units
it reads (``pre``; ``None`` for the inputs). HAT's per-weight mask is min(post, pre) as in the
authors' ``get_view_for``; the output ``head`` is per task and never gated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hnet.models.resnet import ResNet32
from hnet.models.target import MLP
from hnet.models.zenke import ZenkeNet, feature_side


@dataclass(frozen=True)
class ParamUnits:
    """Which gates a parameter sits between: it writes units of gate ``post`` and reads units of
    gate ``pre`` (None: the network's input), each input unit spread over ``repeat`` consecutive
    input columns (a flattened feature map feeding a linear layer)."""

    post: int
    pre: int | None = None
    repeat: int = 1


@dataclass(frozen=True)
class UnitLayout:
    """The gate points of a net (module name, number of units) and the gates of its parameters."""

    points: tuple[tuple[str, int], ...]
    params: dict[str, ParamUnits]

    @property
    def sizes(self) -> list[int]:
        return [n for _, n in self.points]

    def weight_mask(self, name: str, shape: torch.Size, gates: list[Tensor]) -> Tensor | None:
        """The per-entry mask of parameter ``name`` from one gate vector per layer: min(post,
        pre) for a weight, post for a bias or BatchNorm scale/shift; None if it has no gate."""
        spec = self.params.get(name)
        if spec is None:
            return None
        post = gates[spec.post]
        if len(shape) == 1:
            return post
        lead = (1,) * (len(shape) - 2)
        mask = post.view(-1, 1, *lead).expand(shape)
        if spec.pre is None:
            return mask
        pre = gates[spec.pre].repeat_interleave(spec.repeat)
        return torch.minimum(mask, pre.view(1, -1, *lead).expand(shape))


def _mlp(net: MLP) -> UnitLayout:
    hidden = [m.out_features for n, m in net.body.named_children() if n.startswith("fc")]
    points = tuple((f"body.act{i}", n) for i, n in enumerate(hidden))
    params = {}
    for i in range(len(hidden)):
        params[f"body.fc{i}.weight"] = ParamUnits(i, i - 1 if i else None)
        params[f"body.fc{i}.bias"] = ParamUnits(i)
    return UnitLayout(points, params)


def _zenke(net: ZenkeNet) -> UnitLayout:
    widths = [net.features[p][c].out_channels for p in (0, 1) for c in (0, 2)]
    points = tuple(
        (f"features.{p}.{c + 1}", widths[2 * p + c // 2]) for p in (0, 1) for c in (0, 2)
    )
    points += (("fc.2", net.fc[1].out_features),)
    params = {}
    for i, (p, c) in enumerate((p, c) for p in (0, 1) for c in (0, 2)):
        params[f"features.{p}.{c}.weight"] = ParamUnits(i, i - 1 if i else None)
        params[f"features.{p}.{c}.bias"] = ParamUnits(i)
    _, h, w = net.in_shape
    params["fc.1.weight"] = ParamUnits(4, 3, feature_side(h) * feature_side(w))
    params["fc.1.bias"] = ParamUnits(4)
    return UnitLayout(points, params)


def _resnet(net: ResNet32) -> UnitLayout:
    points, params = [("stem.1", net.stem[0].out_channels)], {}
    for p in ("stem.0", "stem.1"):
        params[f"{p}.weight"] = params[f"{p}.bias"] = ParamUnits(0)
    stream = 0  # the gate of the residual stream a block reads
    for i, block in enumerate(net.blocks):
        inner, out = len(points), len(points) + 1
        points += [
            (f"blocks.{i}.a.1", block.a[0].out_channels),
            (f"blocks.{i}", block.b[0].out_channels),
        ]
        params[f"blocks.{i}.a.0.weight"] = ParamUnits(inner, stream)
        params[f"blocks.{i}.b.0.weight"] = ParamUnits(out, inner)
        for p, gate in (("a.0", inner), ("a.1", inner), ("b.1", out)):
            params[f"blocks.{i}.{p}.bias"] = ParamUnits(gate)
        for p, gate in (("a.1", inner), ("b.1", out)):
            params[f"blocks.{i}.{p}.weight"] = ParamUnits(gate)
        params[f"blocks.{i}.b.0.bias"] = ParamUnits(out)
        stream = out
    return UnitLayout(tuple(points), params)


LAYOUTS: dict[type, Callable[[nn.Module], UnitLayout]] = {
    MLP: _mlp,
    ZenkeNet: _zenke,
    ResNet32: _resnet,
}


def unit_layout(net: nn.Module) -> UnitLayout:
    """The gate points and parameter gates of ``net`` (an MLP, ZenkeNet or ResNet-32)."""
    build = LAYOUTS.get(type(net))
    if build is None:
        raise TypeError(f"no unit layout for {type(net).__name__}; add one to LAYOUTS")
    layout = build(net)
    names = dict(net.named_parameters())
    missing = [n for n in layout.params if n not in names]
    if missing:
        raise AssertionError(f"unit layout names unknown parameters: {missing}")
    return layout


class Gates:
    """Forward hooks that multiply each gate point's output by a gate vector, channel-wise.

    ``set(gates)`` installs one vector per layer (shape ``(units,)``, the same for every row of
    the batch: a batch belongs to one task in CL1); ``set(None)`` makes the hooks pass outputs
    through unchanged."""

    def __init__(self, net: nn.Module, layout: UnitLayout) -> None:
        self.current: list[Tensor] | None = None
        modules = dict(net.named_modules())
        self.handles = [
            modules[name].register_forward_hook(self._hook(i))
            for i, (name, _) in enumerate(layout.points)
        ]

    def _hook(self, i: int) -> Callable:
        def hook(module: nn.Module, inputs: tuple, out: Tensor) -> Tensor | None:
            if self.current is None:
                return None
            g = self.current[i]
            return out * g.view(1, -1, *(1,) * (out.dim() - 2))

        return hook

    def set(self, gates: list[Tensor] | None) -> None:
        self.current = gates
