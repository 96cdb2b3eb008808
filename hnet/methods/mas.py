"""Memory Aware Synapses (Aljundi et al. 2018, ECCV): importance = output sensitivity.

A parameter matters to a task if small changes of it change the network's outputs on that task's
inputs; no labels or loss are involved. After task t (Aljundi et al. eq. 2-4):

    Ω_t,i = mean_x | ∂ ‖f(x)‖²₂ / ∂θ_i |

with f(x) the outputs the task was trained with (its head in CL1, the shared head in CL2, the
heads of all tasks seen so far in CL3), per-sample gradients (vmap ∘ grad, in chunks) over at most
``samples`` training inputs; cost per task: one forward and backward per sample. Importances are
*summed* over tasks (Ω ← Ω + Ω_t, as in the paper's sequential accumulation; a running average
would weaken old tasks as more arrive) and later tasks pay

    λ · Σ_i Ω_i (θ_i − θ*_i)²,      θ* = parameters after the latest task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.func import grad

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.ewc import flat_params, sample_mean


def sensitivity_one(f: Callable, params: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
    """|∂‖f(x)‖²/∂θ| for one input."""
    g = grad(lambda p: f(p, x).pow(2).sum())(params)
    return {k: v.abs() for k, v in g.items()}


@METHODS.register("mas")
class MAS(Baseline):
    summary = "Memory Aware Synapses: output-sensitivity penalty (Aljundi et al. 2018)"
    defaults: ClassVar[dict[str, Any]] = {
        "lambda": 1.0,  # penalty strength λ (Aljundi et al.'s value)
        "samples": 1000,  # training inputs per task for the importance estimate (a mean)
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if hp["lambda"] < 0:
            raise ConfigError(f"mas.lambda must be ≥ 0, got {hp['lambda']!r}.")
        if hp["samples"] < 1:
            raise ConfigError(f"mas.samples must be ≥ 1, got {hp['samples']!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.omega: Tensor | None = None  # Ω summed over finished tasks
        self.anchor: Tensor | None = None  # θ*

    def penalty(self) -> Tensor | None:
        if self.omega is None or self.hp["lambda"] == 0:
            return None
        return self.hp["lambda"] * (self.omega * (flat_params(self.net) - self.anchor).pow(2)).sum()

    def end_task(self, task: int) -> None:
        new = sample_mean(self, task, self.hp["samples"], sensitivity_one)
        self.omega = new if self.omega is None else self.omega + new
        self.anchor = flat_params(self.net).detach()

    def extra_state(self) -> dict[str, Any]:
        return {"omega": self.omega, "anchor": self.anchor}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.omega, self.anchor = state["omega"], state["anchor"]

    def memory_bytes(self) -> dict[str, int]:
        """The summed importances Ω and the anchor θ*."""
        return {
            "importance": tensor_bytes(self.omega),
            "anchors": tensor_bytes(self.anchor),
            **super().memory_bytes(),
        }
