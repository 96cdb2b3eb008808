"""XdG, context-dependent gating (Masse, Grant & Freedman 2018, PNAS), as in van de Ven's
continual-learning repository: every task gets a fixed random binary gate per hidden unit, each
unit gated off (multiplied by 0) with probability ``gating_prop``, drawn once and never learned.
Each task thus trains and uses its own random sub-network; units shared by two tasks are still
overwritten (Masse et al. combine XdG with EWC or SI for that; here it is plain XdG).

Gate points: the hidden units of :mod:`hnet.methods.common.units` (the MLP's hidden layers, as
in van de Ven's code; on the conv targets also the channels of every conv layer, a channel being
a unit — their code gates only fully connected layers).

The gates are regenerated from the job's seed (stream ``xdg-gates``) rather than stored, so they
cost no memory (``memory_bytes`` reports 0 masks) and need no checkpoint. Adam is carried across
tasks by default, as in van de Ven's code (its ``adam``; ``reset_optimizer: true`` is their
``adam_reset``).

Scenarios: CL1 only; the gate is chosen by task identity, undefined without it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.isolation import Isolation
from hnet.methods.common.units import Gates, unit_layout


@METHODS.register("xdg")
class XdG(Isolation):
    """Context-dependent gating: a fixed random subset of hidden units per task; CL1 only (the
    gate is chosen by task identity, undefined without it)."""

    summary = "XdG: fixed random gating of hidden units per task (Masse et al. 2018)"
    defaults: ClassVar[dict[str, Any]] = {
        "gating_prop": 0.5,  # probability that a unit is gated off for a task (tuned/xdg.yaml)
        "reset_optimizer": False,  # van de Ven: one Adam across tasks
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        p = cfg[cls.name]["gating_prop"]
        if not 0 <= p < 1:
            raise ConfigError(f"xdg.gating_prop must be in [0, 1) (1 gates every unit), got {p!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        layout = unit_layout(self.net)
        gen = rng.generator(cfg["seed"], "xdg-gates")
        keep = 1 - self.hp["gating_prop"]
        # gates[layer]: (T, units), 1 = the unit is used by the task
        self.gates = [
            (torch.rand(bench.n_tasks, n, generator=gen) < keep).float().to(device)
            for n in layout.sizes
        ]
        self.hooks = Gates(self.net, layout)

    def task_gates(self, task: int) -> list[Tensor]:
        return [g[task] for g in self.gates]

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.hooks.set(self.task_gates(task))
        return super().train_step(task, x, y)

    @torch.no_grad()
    def task_outputs(self, x: Tensor, task: int) -> Tensor:
        self.hooks.set(self.task_gates(task))
        return super().task_outputs(x, task)

    def memory_bytes(self) -> dict[str, int]:
        return {"masks": 0, **self.bn_bytes()}  # gates regenerated from the seed
