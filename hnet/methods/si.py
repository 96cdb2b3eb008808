"""Synaptic Intelligence (Zenke, Poole & Ganguli 2017, ICML): importance from the training path.

While a task is trained, each parameter's contribution to the drop of the task loss is
accumulated online as the path integral of gradient × update,

    ω_i += −g_i · Δθ_i        (every optimizer step)

where g is the gradient of the *task loss only* (Zenke et al.; the penalty's own gradient is left
out, so ω measures what the task gained from the move) and Δθ the actual step taken. At the end
of task t the importance is normalised by how far the parameter moved during the task,

    Ω_i += ω_i / ((θ_i(end of t) − θ_i(start of t))² + ξ),    ω ← 0,   θ* ← θ(end of t)

and later tasks pay  c · Σ_i Ω_i (θ_i − θ*_i)²  (no ½, as in the paper and van de Ven's code).
Cost: O(|θ|) extra memory and work per step, nothing at task ends.

Note: van de Ven et al.'s code (where the ``tuned`` values of c come from) accumulates ω with the
gradient of the *total* loss, penalty included; here it is the task loss, as in Zenke et al.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.ewc import flat_params


def flat_grad(net: torch.nn.Module) -> Tensor:
    """All gradients as one vector (zeros where a parameter got none, e.g. unused heads)."""
    return torch.cat(
        [(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in net.parameters()]
    )


@METHODS.register("si")
class SI(Baseline):
    summary = "Synaptic Intelligence: path-integral importance penalty (Zenke et al. 2017)"
    defaults: ClassVar[dict[str, Any]] = {
        "c": 1.0,  # penalty strength c (tuned per benchmark: tuned/si.yaml)
        "xi": 0.1,  # damping ξ of the normalisation by the squared parameter change
    }

    # Tuned c per benchmark and scenario: tuned/si.yaml (van de Ven et al. 2022).
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if hp["c"] < 0:
            raise ConfigError(f"si.c must be ≥ 0, got {hp['c']!r}.")
        if hp["xi"] <= 0:
            raise ConfigError(f"si.xi must be > 0 (it bounds Ω), got {hp['xi']!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        zeros = torch.zeros_like(flat_params(self.net).detach())
        self.omega = zeros.clone()  # Ω: consolidated importance of finished tasks
        self.w = zeros.clone()  # ω: path integral of the current task
        self.anchor: Tensor | None = None  # θ*: parameters at the end of the last task
        self.start = flat_params(self.net).detach()  # θ at the start of the current task
        self.prev = self.start.clone()  # θ before the current step
        self.g = zeros.clone()  # task-loss gradient of the current step

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        self.start = flat_params(self.net).detach()
        self.prev = self.start.clone()

    def penalty(self) -> Tensor | None:
        if self.anchor is None or self.hp["c"] == 0:
            return None
        return self.hp["c"] * (self.omega * (flat_params(self.net) - self.anchor).pow(2)).sum()

    def after_loss_backward(self) -> None:
        self.g = flat_grad(self.net)  # the task loss's gradient only (Zenke et al.)

    @torch.no_grad()
    def after_step(self, task: int) -> None:
        now = flat_params(self.net)
        self.w -= self.g * (now - self.prev)
        self.prev = now

    @torch.no_grad()
    def end_task(self, task: int) -> None:
        theta = flat_params(self.net)
        self.omega += self.w / ((theta - self.start).pow(2) + self.hp["xi"])
        self.w.zero_()
        self.anchor = theta.clone()

    def extra_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("omega", "w", "anchor", "start", "prev", "g")}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def memory_bytes(self) -> dict[str, int]:
        """Ω and the running path integral ω (held through every task), and the anchor θ*.
        θ at the start of a task equals θ* (set at the same boundary), and θ before the step and
        the step's gradient are per-step work buffers, so they are not counted."""
        return {
            "importance": tensor_bytes(self.omega, self.w),
            "anchors": tensor_bytes(self.anchor),
            **super().memory_bytes(),
        }
