"""Baselines: an ordinary network that owns its weights, trained with Adam.

Every baseline uses the same target architecture as the HNET run it is compared with
(``target`` config section, heads by scenario), the same optimizer family, batch size and
iterations, so a grid cell differs in the method only. Subclasses add what makes them a method:
a penalty (EWC, SI, MAS), extra data (replay, joint) or a reset (scratch), through the hooks
below; the optimisation step itself is shared.

Scenarios: CL1 trains and tests task t on its own head; CL2 uses one shared head; CL3 trains on
the heads of all tasks seen so far ("active classes", van de Ven et al. 2020) with global
labels and predicts the argmax over them at test time.

Modes: the network is in train mode for optimisation steps (BatchNorm uses batch statistics and
updates its running ones, dropout is on) and in eval mode for predictions and for the samples of
a Fisher or importance estimate. BatchNorm's running statistics are one shared set by default,
as in the paper's fine-tuning control; ``train.bn_per_task`` (CL1 only) keeps one set per task,
swapped in for the task being trained or tested (:class:`BatchNormSets`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.func import functional_call

from hnet.methods.common.base import Method
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.common.optim import adam
from hnet.models.batchnorm import get_stats, init_stats, num_stats, set_stats
from hnet.models.target import build_target, head_outputs, num_weights


class BatchNormSets:
    """One set of BatchNorm running statistics per task for an ordinary module.

    The module's buffers always hold the set of task ``current``; :meth:`use` puts the module's
    statistics back into their row and loads another task's. Each set starts like a new
    BatchNorm's (mean 0, variance 1), as HNET's do.
    """

    def __init__(self, net: torch.nn.Module, n_tasks: int, device: torch.device) -> None:
        self.sets = init_stats(net, n_tasks, device)
        self.current = 0
        set_stats(net, self.sets[0])

    def use(self, net: torch.nn.Module, task: int) -> None:
        if task != self.current:
            self.sets[self.current] = get_stats(net)
            set_stats(net, self.sets[task])
            self.current = task

    def state(self, net: torch.nn.Module) -> dict[str, Any]:
        sets = self.sets.clone()
        sets[self.current] = get_stats(net)
        return {"sets": sets, "current": self.current}

    def load(self, state: dict[str, Any]) -> None:
        self.sets.copy_(state["sets"])
        self.current = state["current"]


class Baseline(Method):
    scenarios: ClassVar[tuple[str, ...]] = ("cl1", "cl2", "cl3")
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.net = self.build_net()
        self.opt = self.build_optimizer()
        per_task = cfg["train"]["bn_per_task"] and num_stats(self.net) > 0
        self.bn = BatchNormSets(self.net, bench.n_tasks, device) if per_task else None

    def build_net(self) -> torch.nn.Module:
        b = self.bench
        net = build_target(self.cfg["target"], b.in_dim, b.head_size, self.n_heads(), b.in_shape)
        return net.to(self.device)

    def use_task(self, task: int) -> None:
        """Make ``task``'s BatchNorm statistics the module's (with ``train.bn_per_task``)."""
        if self.bn is not None:
            self.bn.use(self.net, task)

    def scale_lr(self, factor: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self.cfg["train"]["lr"] * factor

    def build_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.net.parameters(), self.cfg["train"]["lr"], self.cfg)

    # -- scenario-aware outputs ------------------------------------------------------------------
    def logits(
        self,
        x: Tensor,
        task: int,
        n_active: int | None = None,
        params: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Outputs used for ``task``: its head (CL1), the shared head (CL2), or the heads of the
        first ``n_active`` tasks side by side (CL3, global class ids). ``params``: the net's
        parameters as tensors of their own (one seed of a pack, under ``vmap``)."""
        out = self.net(x) if params is None else functional_call(self.net, params, (x,))
        return self.select_logits(out, task, n_active)

    def select_logits(self, out: Tensor, task: int, n_active: int | None = None) -> Tensor:
        """The part of the net's outputs ``out`` (…, outputs) that :meth:`logits` uses."""
        if self.scenario == "cl3" and self.bench.kind != "regression":
            return out[..., : (n_active or task + 1) * self.bench.head_size]
        return head_outputs(out, self.net, task)

    def loss_on(
        self, x: Tensor, y: Tensor, task: int, params: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Task loss of a batch of ``task`` (CL3: over the classes of all tasks seen so far)."""
        out = self.logits(x, task, self.seen if self.scenario == "cl3" else None, params)
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
        self.net.train()
        self.use_task(task)
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
        self.net.eval()
        self.use_task(task)  # CL1 only: task identity is given
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
            "bn": None if self.bn is None else self.bn.state(self.net),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.seen = state["seen"]
        self.load_extra_state(state["extra"])
        if self.bn is not None:
            self.bn.load(state["bn"])

    def param_counts(self) -> dict[str, Any]:
        return {"n_params_target": num_weights(self.net)}

    def memory_bytes(self) -> dict[str, int]:
        """With ``train.bn_per_task``: the BatchNorm statistics of the learned tasks other than
        the one in the network; nothing else (subclasses add what they keep)."""
        if self.bn is None or self.seen < 2:
            return {}
        return {"batchnorm": (self.seen - 1) * tensor_bytes(self.bn.sets[0])}
