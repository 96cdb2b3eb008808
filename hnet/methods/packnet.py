"""PackNet (Mallya & Lazebnik 2018, CVPR): iterative pruning packs one task after another into
the free weights of one network.

Every weight has an owner (``owner``, one byte per weight: 0 = free, k = task k, 1-based).
Task t trains only the free weights; everything owned by earlier tasks is frozen (restored
after each optimizer step, so it stays bit for bit). Within the task's fixed step budget the
first ``1 − retrain`` of the steps train, then each layer's free weights are pruned by magnitude:
the largest ``1 − prune`` of them (per layer, as in the paper) become task t's, the rest are set
to zero and released for later tasks; the remaining ``retrain`` steps retrain task t's kept
weights with the released ones held at zero. At test time task s uses the weights owned by tasks
1..s (the others are masked to zero), so its outputs are exactly those it had when it ended.

What is pruned: the weight matrices and convolution kernels of the body. Biases and BatchNorm's
γ/β are trained with the first task and frozen afterwards (the authors' code does the same);
each task's output head rows are its own and not pruned. BatchNorm's running statistics are kept
per task (:mod:`hnet.methods.common.isolation`).

Scenarios: CL1 only; the mask is chosen by task identity, undefined without it.
Memory: the owner bytes of every parameter (``masks``), plus per-task BatchNorm statistics.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.isolation import Isolation
from hnet.steps import steps_of

MAX_TASKS = 254  # owners are uint8, 0 = free


def keep_largest(w: Tensor, free: Tensor, keep: float) -> Tensor:
    """Bool mask of the ``round(keep · n_free)`` free entries of ``w`` largest in magnitude."""
    n = round(keep * int(free.sum()))
    idx = free.flatten().nonzero().squeeze(1)
    top = w.flatten()[idx].abs().topk(n, sorted=False).indices
    kept = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
    kept[idx[top]] = True
    return kept.view_as(w)


@METHODS.register("packnet")
class PackNet(Isolation):
    """PackNet: per-layer magnitude pruning after each task, owned weights frozen; CL1 only
    (the task's weights are chosen by task identity, undefined without it)."""

    summary = "PackNet: iterative pruning, one weight subset per task (Mallya & Lazebnik 2018)"
    defaults: ClassVar[dict[str, Any]] = {
        "prune": 0.75,  # fraction of a layer's free weights released after each task
        "retrain": 0.25,  # fraction of each task's steps that retrain after pruning
        "reset_optimizer": True,  # a fresh Adam per task
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        for key in ("prune", "retrain"):
            if not 0 <= hp[key] < 1:
                raise ConfigError(f"packnet.{key} must be in [0, 1), got {hp[key]!r}.")
        n = cfg["data"].get("n_tasks")
        if isinstance(n, int) and n > MAX_TASKS:
            raise ConfigError(
                f"packnet stores task owners in one byte: data.n_tasks ≤ {MAX_TASKS}."
            )

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        if bench.n_tasks > MAX_TASKS:
            raise ConfigError(f"packnet stores task owners in one byte: at most {MAX_TASKS} tasks.")
        self.owner = {
            n: torch.zeros_like(p, dtype=torch.uint8) for n, p in self.net.named_parameters()
        }
        self.pruned = False  # has the current task been pruned (retraining phase)?
        self.training = -1  # the task begun and not yet ended (−1: none)

    @staticmethod
    def prunable(name: str, p: Tensor) -> bool:
        return p.dim() >= 2 and not name.startswith("head.")

    def prune_step(self, task: int) -> int:
        """The step of ``task`` before which it is pruned."""
        return round(steps_of(self.cfg, task) * (1 - self.hp["retrain"]))

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        self.pruned, self.training = False, task

    def trainable(self, name: str, p: Tensor, task: int) -> Tensor:
        own = self.owner[name]
        if self.pruned and self.prunable(name, p):
            return own == task + 1  # retraining: the kept weights; released ones stay zero
        return own == 0

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        if not self.pruned and self.step >= self.prune_step(task):
            self.prune(task)
        params = list(self.net.named_parameters())
        before = [p.detach().clone() for _, p in params]
        loss = super().train_step(task, x, y)
        with torch.no_grad():
            for (name, p), old in zip(params, before, strict=True):
                p.copy_(torch.where(self.trainable(name, p, task), p, old))
        return loss

    @torch.no_grad()
    def prune(self, task: int) -> None:
        """Keep the largest ``1 − prune`` of each layer's free weights for ``task``; zero and
        release the others."""
        for name, p in self.net.named_parameters():
            if not self.prunable(name, p):
                continue
            free = self.owner[name] == 0
            kept = keep_largest(p, free, 1 - self.hp["prune"])
            self.owner[name][kept] = task + 1
            p[free & ~kept] = 0.0
        self.pruned = True

    @torch.no_grad()
    def end_task(self, task: int) -> None:
        if not self.pruned:
            self.prune(task)
        for name, p in self.net.named_parameters():
            if self.prunable(name, p):
                continue
            own = self.owner[name]
            if name.startswith("head."):  # the task's own rows
                hs = self.net.head_size
                own = own[task * hs : (task + 1) * hs] if self.net.n_heads > 1 else own
            own[own == 0] = task + 1
        self.pruned, self.training = False, -1

    def masked_params(self, task: int) -> dict[str, Tensor]:
        """The net's parameters with everything but tasks 1..``task``'s weights zeroed (and the
        free weights, while ``task`` is still being trained)."""
        out = {}
        for name, p in self.net.named_parameters():
            own = self.owner[name]
            use = (own >= 1) & (own <= task + 1)
            if task == self.training:
                use |= own == 0
            out[name] = p * use
        return out

    @torch.no_grad()
    def task_outputs(self, x: Tensor, task: int) -> Tensor:
        self.net.eval()
        self.use_task(task)
        return self.logits(x, task, params=self.masked_params(task))

    def memory_bytes(self) -> dict[str, int]:
        return {"masks": sum(o.numel() for o in self.owner.values()), **self.bn_bytes()}

    def extra_state(self) -> dict[str, Any]:
        return {
            **super().extra_state(),
            "owner": dict(self.owner),
            "pruned": self.pruned,
            "training": self.training,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        for name, own in state["owner"].items():
            self.owner[name].copy_(own)
        self.pruned, self.training = state["pruned"], state["training"]
