"""Learning without Forgetting (Li & Hoiem 2017), as van de Ven, Tuytelaars & Tolias (2022) run
it in their continual-learning repository (``--lwf``: replay of the *current* inputs with
distillation targets).

Why this baseline: it is the functional regularizer that stores no data and no importance
values, only a copy of the network. While task t trains, the copy taken after task t − 1
labels every current batch with its outputs, and the learner is asked to keep producing them
(knowledge distillation, Hinton et al. 2015). It is the closest relative of hnet's output
regularizer, which keeps the *generated weights* of earlier tasks where they were, instead of a
network's outputs on the current inputs.

The loss on task t > 1 is ``CE(current batch) + distill_weight · D`` (van de Ven's
``lwf_weighting``: the current loss is not down-weighted by 1/t), with D per scenario:

* CL1: the sum over the t − 1 earlier heads of the distillation on each head;
* CL2: (t − 1) × the distillation on the shared head (van de Ven multiplies the replay loss by
  the number of earlier contexts outside Class-IL);
* CL3: one distillation over the classes of all tasks seen so far, the teacher's earlier classes
  padded with target probability 0 for the new task's (``loss_fn_kd``; the active classes are
  those seen so far, as for every baseline here and as van de Ven's compare script sets them).

Each distillation is van de Ven's ``loss_fn_kd`` at temperature T without its optional T²
factor (his ``norm=False``, the default his LwF uses): the shared
:func:`~hnet.methods.common.distill.distill_loss` with ``t_squared=False``. On the regression
benchmark the outputs are values, not class scores, so the distillation of an earlier head is
the mean squared difference to the teacher's output (the same (t − 1)-sum over heads).

The teacher is a frozen copy taken at ``end_task`` and evaluated in eval mode (BatchNorm's
running statistics, no dropout), as van de Ven's ``copy.deepcopy(model).eval()``; it is part of
the checkpoint and of the memory the method keeps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.distill import distill_loss
from hnet.methods.hnet_r import frozen_copy


def module_bytes(net: torch.nn.Module) -> int:
    """Bytes of every tensor a module's state holds (weights and BatchNorm statistics)."""
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def load_frozen(net: torch.nn.Module, state: dict[str, Any] | None) -> torch.nn.Module | None:
    """A frozen eval-mode copy of ``net``'s architecture holding ``state`` (None: no copy)."""
    if state is None:
        return None
    copy = frozen_copy(net).eval()
    copy.load_state_dict(state)
    return copy


@METHODS.register("lwf")
class LwF(Baseline):
    """LwF in CL1, CL2 and CL3: distillation needs no task identity and no stored data, so every
    scenario is defined (van de Ven runs it in all three)."""

    summary = "Learning without Forgetting: distil the previous model's outputs on current inputs"
    scenarios = ("cl1", "cl2", "cl3")
    defaults: ClassVar[dict[str, Any]] = {
        "temperature": 2.0,  # van de Ven's --temp default
        # multiplies the distillation term (1 = van de Ven's LwF; 0 = fine-tuning)
        "distill_weight": 1.0,
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if not isinstance(hp["temperature"], int | float) or hp["temperature"] <= 0:
            raise ConfigError(f"lwf.temperature must be > 0, got {hp['temperature']!r}.")
        w = hp["distill_weight"]
        if not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"lwf.distill_weight must be ≥ 0 (0 = fine-tuning), got {w!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.prev: torch.nn.Module | None = None  # the network after the previous task

    def end_task(self, task: int) -> None:
        self.prev = frozen_copy(self.net).eval()

    def distillation(self, out: Tensor, x: Tensor, task: int) -> Tensor:
        """D above: the student's outputs ``out`` (all heads) against the teacher's on ``x``."""
        with torch.no_grad():
            target = self.prev(x)
        hs, temp = self.bench.head_size, self.hp["temperature"]
        if self.bench.kind == "regression":  # CL1 only: every earlier head, mean squared error
            earlier = out[:, : task * hs].reshape(len(x), task, hs)
            return task * F.mse_loss(earlier, target[:, : task * hs].reshape(len(x), task, hs))
        if self.scenario == "cl3":
            new = out[:, : (task + 1) * hs]
            return distill_loss(new, target[:, : task * hs], temp, t_squared=False)
        if self.net.n_heads == 1:  # CL2: the shared head, times the earlier tasks
            return task * distill_loss(out[:, :hs], target[:, :hs], temp, t_squared=False)
        # CL1: each earlier head on its own (distill_loss averages over samples × heads)
        student = out[:, : task * hs].reshape(len(x), task, hs)
        teacher = target[:, : task * hs].reshape(len(x), task, hs)
        return task * distill_loss(student, teacher, temp, t_squared=False)

    def loss_on(
        self, x: Tensor, y: Tensor, task: int, params: dict[str, Tensor] | None = None
    ) -> Tensor:
        """The task loss of the batch plus the distillation of the same forward pass's outputs."""
        if params is not None:
            raise NotImplementedError("lwf is not packable")
        out = self.net(x)
        cur = self.select_logits(out, task, self.seen if self.scenario == "cl3" else None)
        loss = self.task_loss(cur, self.scenario_labels(y, task))
        if task > 0 and self.prev is not None and self.hp["distill_weight"] > 0:
            loss = loss + self.hp["distill_weight"] * self.distillation(out, x, task)
        return loss

    def memory_bytes(self) -> dict[str, int]:
        return {"previous_model": 0 if self.prev is None else module_bytes(self.prev)}

    def extra_state(self) -> dict[str, Any]:
        return {"prev": None if self.prev is None else self.prev.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.prev = load_frozen(self.net, state["prev"])
