"""Baselines: an ordinary network that owns its weights, trained with Adam.

Every baseline uses the same target architecture as the HNET run it is compared with
(``target`` config section, heads by scenario), the same optimizer family, batch size and
iterations, so a grid cell differs in the method only. Subclasses add what makes them a method:
a penalty (EWC, SI, MAS), extra data (replay, joint) or a reset (scratch), through the hooks
below; the optimisation step itself is shared.

Scenarios: CL1 trains and tests task t on its own head; CL2 uses one shared head; CL3 trains on
the heads of all tasks seen so far ("active classes", van de Ven et al. 2020) with global
labels and predicts the argmax over them at test time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.methods.base import METHODS, Method
from hnet.models.target import build_target, head_outputs, num_weights


class Baseline(Method):
    scenarios: ClassVar[tuple[str, ...]] = ("cl1", "cl2", "cl3")
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.net = self.build_net()
        self.opt = self.build_optimizer()

    def build_net(self) -> torch.nn.Module:
        b = self.bench
        return build_target(self.cfg["target"], b.in_dim, b.head_size, self.n_heads()).to(
            self.device
        )

    def build_optimizer(self) -> torch.optim.Optimizer:
        train = self.cfg["train"]
        return torch.optim.Adam(
            self.net.parameters(), lr=train["lr"], betas=tuple(train["adam_betas"])
        )

    # -- scenario-aware outputs ------------------------------------------------------------------
    def logits(self, x: Tensor, task: int, n_active: int | None = None) -> Tensor:
        """Outputs used for ``task``: its head (CL1), the shared head (CL2), or the heads of the
        first ``n_active`` tasks side by side (CL3, global class ids)."""
        out = self.net(x)
        if self.scenario == "cl3" and self.bench.kind != "regression":
            return out[:, : (n_active or task + 1) * self.bench.head_size]
        return head_outputs(out, self.net, task)

    def loss_on(self, x: Tensor, y: Tensor, task: int) -> Tensor:
        """Task loss of a batch of ``task`` (CL3: over the classes of all tasks seen so far)."""
        out = self.logits(x, task, self.seen if self.scenario == "cl3" else None)
        return self.task_loss(out, self.scenario_labels(y, task))

    # -- hooks for subclasses --------------------------------------------------------------------
    def penalty(self) -> Tensor | None:
        """Regularization term added to the loss (EWC, SI, MAS); None = no penalty."""
        return None

    def extra_loss(self, task: int) -> Tensor | None:
        """Loss on data other than the current batch (replay); None = none."""
        return None

    def after_loss_backward(self) -> None:
        """Called when the task loss's gradient is in ``.grad`` and the penalty's is not yet
        (SI records the task-loss gradient here)."""

    def after_step(self, task: int) -> None:
        """Called after every optimizer step (SI's path integral)."""

    # -- the step --------------------------------------------------------------------------------
    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_on(x, y, task)
        extra = self.extra_loss(task)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        self.after_loss_backward()
        total = loss.detach()
        pen = self.penalty()
        if pen is not None:  # its gradient accumulates onto the task loss's
            pen.backward()
            total = total + pen.detach()
        self.opt.step()
        self.after_step(task)
        return total

    @torch.no_grad()
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        out = self.logits(x, task, self.active_tasks(task))
        return (out if self.bench.kind == "regression" else out.argmax(-1)), None

    # -- checkpoints ---------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Method-specific state (Fisher, importances, anchors, buffers) for checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "seen": self.seen,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.seen = state["seen"]
        self.load_extra_state(state["extra"])

    def param_counts(self) -> dict[str, Any]:
        return {"n_params_target": num_weights(self.net)}


@METHODS.register("finetune")
class Finetune(Baseline):
    """Plain sequential training: no protection against forgetting (the lower bound)."""

    name = "finetune"
    summary = "sequential training, no protection (lower bound)"
