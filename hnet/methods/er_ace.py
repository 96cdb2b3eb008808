"""ER-ACE (Caccia, Aljundi, Asadi, Tuytelaars, Pineau & Belilovsky 2022, "New Insights on
Reducing Abrupt Representation Change in Online Continual Learning"): experience replay with an
asymmetric cross-entropy on the incoming batch.

Why this baseline: when new classes arrive, plain replay's cross-entropy on the new batch pushes
the logits of every old class down, which drags the old classes' features along; ER-ACE's loss
on the incoming batch only competes among the classes present in that batch, while the replayed
batch keeps the full softmax. It is a strong, cheap rehearsal method in class-incremental
learning.

The loss (Mammoth ``models/er_ace.py`` ``observe``, ``task_free`` off): from the second task on,
the current batch's logits of classes neither present in the batch nor at or above the highest
class seen so far are masked to −1e9 before its cross-entropy; plus the plain cross-entropy of a
buffer batch. After the step the batch is offered to the reservoir.

Scenarios: CL1–CL3, with the mask defined in each scenario's label space. CL3: the active classes
of all tasks seen (global labels), so the masked ones are chiefly earlier tasks' classes — the
setting the method is made for. CL1 (the task's own head) and CL2 (the shared head, task-local
labels): the softmax never holds an earlier task's classes beside the new ones, so only classes
of the head absent from the batch are masked, and with every class of a task in most batches ER-ACE
there is ER with equal weights. The replayed batch uses :func:`hnet.methods.replay.mixed_loss`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.methods.common.base import METHODS
from hnet.methods.common.rehearsal import Rehearsal
from hnet.methods.replay import mixed_loss

MASKED = -1e9  # Mammoth's fill value for masked logits


def asymmetric_logits(logits: Tensor, labels: Tensor, seen_max: Tensor) -> Tensor:
    """``logits`` with every class masked that is not in ``labels`` and below ``seen_max``, the
    highest class seen so far (classes not yet seen stay, as in Mammoth)."""
    cols = torch.arange(logits.shape[1], device=logits.device)
    present = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    present = present.index_fill(0, labels, True) | (cols >= seen_max)
    return logits.masked_fill(~present, MASKED)


@METHODS.register("er_ace")
class ERACE(Rehearsal):
    summary = "ER-ACE: replay with a cross-entropy on new data restricted to its present classes"
    defaults: ClassVar[dict[str, Any]] = {
        "replay_batch_size": None,  # None = train.batch_size (Mammoth's minibatch_size)
        "asymmetric": True,  # False: plain ER with equal weights (the mechanism switched off)
    }

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        # highest class of the label space seen in a training batch so far (a tensor: no reads)
        self.seen_max = torch.zeros((), dtype=torch.long, device=device)

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.net.train()
        self.use_task(task)
        self.opt.zero_grad(set_to_none=True)
        logits = self.logits(x, task, self.seen if self.scenario == "cl3" else None)
        labels = self.scenario_labels(y, task)
        if self.bench.kind == "regression":  # no classes to mask: ER with equal weights
            loss = self.task_loss(logits, labels)
        else:
            self.seen_max = torch.maximum(self.seen_max, labels.max())
            if task > 0 and self.hp["asymmetric"]:
                logits = asymmetric_logits(logits, labels, self.seen_max)
            loss = F.cross_entropy(logits, labels)
        if task > 0 and len(self.buffer):
            xr, yr, tr, _ = self.buffer.sample(self.replay_bs)
            loss = loss + mixed_loss(self, xr, yr, tr)
        loss.backward()
        self.opt.step()
        self.remember(task, x, y)
        return loss.detach()

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "seen_max": self.seen_max}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.seen_max = state["seen_max"].to(self.seen_max.device)
