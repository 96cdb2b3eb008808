"""Training from scratch: a freshly initialised network and optimizer for every task.

Why: it is the reference for transfer. ``transfer_vs_scratch`` = mean_j (R[j, j] −
R_scratch[j, j]) asks whether having learned tasks < j helps (> 0) or hurts (< 0) learning task
j, compared with the same network, data order, steps and optimizer starting from nothing.

Task 0 keeps the network built at construction (the global RNG seeded by the job, the same
initialisation every baseline starts from), so scratch and finetune coincide on the first task
and transfer on it is exactly 0. From task 1 on, ``begin_task`` re-creates the network from a
generator seeded by (seed, task) — deterministic and independent of what ran before — plus a new
Adam (fresh moments). Scenario conventions are unchanged: in CL3 the fresh net still scores the
active classes of all tasks seen so far, so having seen only task t it misclassifies every
earlier task's inputs; that is the point of the reference, not a bug.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from hnet import rng
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline


@METHODS.register("scratch")
class Scratch(Baseline):
    summary = "fresh network and optimizer per task (reference for transfer)"
    packable: ClassVar[bool] = True  # hnet.methods.common.packed.PackedFinetune

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        if task == 0:
            return
        self.use_task(task)  # file the old net's statistics before it goes (bn_per_task)
        with torch.random.fork_rng(devices=[]):  # leaves the global RNG stream untouched
            torch.manual_seed(rng.derive(self.cfg["seed"], "scratch-init", task))
            self.net = self.build_net()
        self.opt = self.build_optimizer()
