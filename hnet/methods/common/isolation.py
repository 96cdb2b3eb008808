"""What the parameter-isolation methods (HAT, PackNet, XdG) share beyond :class:`Baseline`.

They keep one sub-network per task inside one ordinary network and pick it by task identity at
test time, so they are CL1-only: without task identity there is no mask to apply (inferring it,
e.g. by entropy as HNET+ENT does, is not part of these methods' published form). Because the
sub-network of a finished task must answer as it did when the task ended:

* BatchNorm's running statistics are kept per task (as ``train.bn_per_task`` does for the other
  baselines), always: shared statistics would drift with every later task even where the
  weights are frozen. They count as memory (``bn_stats``).
* ``reset_optimizer`` (a key of each method's section): a fresh Adam at every task start, as the
  authors' HAT and PackNet code build a new optimizer per task. With zero gradients and no
  carried moments Adam leaves a protected weight exactly where it is; a carried Adam would keep
  moving it with the last task's momentum.
* A step counter within the task (HAT's annealing of s, PackNet's pruning point), checkpointed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.methods.common.baseline import Baseline, BatchNormSets
from hnet.models.batchnorm import num_stats

FLOAT_BYTES = 4


class Isolation(Baseline):
    scenarios: ClassVar[tuple[str, ...]] = ("cl1",)

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        if self.bn is None and num_stats(self.net) > 0:
            self.bn = BatchNormSets(self.net, bench.n_tasks, device)
        self.step = 0  # steps taken on the current task

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        self.step = 0
        if self.hp.get("reset_optimizer", True):
            self.opt = self.build_optimizer()

    def train_step(self, task: int, x, y):
        loss = super().train_step(task, x, y)
        self.step += 1
        return loss

    @torch.no_grad()
    def task_outputs(self, x: Tensor, task: int) -> Tensor:
        """The outputs of ``task``'s sub-network (its head), in eval mode; subclasses apply the
        task's mask."""
        self.net.eval()
        self.use_task(task)
        return self.logits(x, task)

    @torch.no_grad()
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        out = self.task_outputs(x, task)
        return (out if self.bench.kind == "regression" else out.argmax(-1)), None

    def bn_bytes(self) -> dict[str, int]:
        """The per-task BatchNorm statistics of the tasks seen (none without BatchNorm)."""
        if self.bn is None:
            return {}
        return {"bn_stats": self.seen * num_stats(self.net) * FLOAT_BYTES}

    def extra_state(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
