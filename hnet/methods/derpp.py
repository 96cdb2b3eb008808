"""DER++ (Buzzega, Boschini, Porrello, Abati & Calderara 2020, "Dark Experience for General
Continual Learning"): experience replay that also stores the network's outputs ("dark
knowledge") for each buffered sample and pulls today's outputs towards them.

Why this baseline: it is among the strongest simple rehearsal methods in the class-incremental
comparisons of its authors' Mammoth library, at the buffer sizes hnet is compared with.

The loss (Mammoth ``models/derpp.py`` ``observe``): the current batch's cross-entropy, plus
``alpha`` · MSE between the outputs on a buffer batch and the outputs stored with those samples,
plus ``beta`` · cross-entropy of a second, independently drawn buffer batch with its stored
labels. After the step the current batch (its raw rows, labels and the outputs computed before
the step) is offered to the reservoir. With ``alpha = beta = 0`` it is fine-tuning (the buffer
is filled but never used).

Scenarios: CL1–CL3. The stored outputs are the whole output layer; the MSE compares a sample's
own head in CL1 (the only output it is ever answered with) and every output unit in CL2 (one
head) and CL3 (all classes, later tasks' included, as Mammoth's class-incremental setting: the
stored, still low outputs of classes to come are what keep them low on old samples once those
classes are trained). The labelled term uses :func:`hnet.methods.replay.mixed_loss`. Memory:
samples, labels, task ids and the stored outputs (float32, the width of the output layer).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.rehearsal import Rehearsal, check_rehearsal
from hnet.methods.replay import mixed_loss


@METHODS.register("derpp")
class DERPP(Rehearsal):
    summary = "DER++: replays stored samples with their labels and their stored output logits"
    defaults: ClassVar[dict[str, Any]] = {
        # Mammoth's best args for seq-mnist and perm-mnist at buffer 500 (tuned/derpp.yaml)
        "alpha": 1.0,  # weight of the logit (MSE) term
        "beta": 0.5,  # weight of the label (cross-entropy) term
        "replay_batch_size": None,  # None = train.batch_size (Mammoth's minibatch_size)
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        check_rehearsal(cfg, "derpp")
        for key in ("alpha", "beta"):
            v = cfg["derpp"][key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"derpp.{key} must be a number ≥ 0, got {v!r}.")

    def logit_loss(self, x: Tensor, tids: Tensor, stored: Tensor) -> Tensor:
        """Mean squared error between today's and the stored outputs: over the sample's own head
        in CL1, over every output unit otherwise (CL3: later tasks' classes too, as Mammoth —
        that term is what keeps new classes' logits low on old samples)."""
        out = self.net(x)
        if self.net.n_heads > 1 and self.scenario != "cl3":
            n, hs = len(x), self.bench.head_size
            rows = torch.arange(n, device=out.device)
            out = out.view(n, self.net.n_heads, hs)[rows, tids]
            stored = stored.view(n, self.net.n_heads, hs)[rows, tids]
        return F.mse_loss(out, stored)

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.net.train()
        self.use_task(task)
        self.opt.zero_grad(set_to_none=True)
        out = self.net(x)
        n_active = self.seen if self.scenario == "cl3" else None
        loss = self.task_loss(
            self.select_logits(out, task, n_active), self.scenario_labels(y, task)
        )
        if len(self.buffer):
            xa, _, ta, za = self.buffer.sample(self.replay_bs)
            loss = loss + self.hp["alpha"] * self.logit_loss(xa, ta, za)
            xb, yb, tb, _ = self.buffer.sample(self.replay_bs)
            loss = loss + self.hp["beta"] * mixed_loss(self, xb, yb, tb)
        loss.backward()
        self.opt.step()
        self.remember(task, x, y, out.detach())
        return loss.detach()
