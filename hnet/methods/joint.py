"""Joint training: the upper bound, made to fit the sequential evaluation protocol.

At task t the network trains on the union of the training data of tasks 0..t ("multitask so
far"), so row t of the accuracy matrix is defined like every other method's and the last row is
joint training on all tasks. Same number of steps and batch size per task as the other methods.

The job loop hands ``train_step`` a batch of the current task only; joint ignores it and draws
its own batch from the union. ``sampling=uniform`` (default) reshuffles the union in epochs like
the job loop does for one task, i.e. ordinary i.i.d. training on the pooled data; ``per_task``
gives every task seen an equal share of each batch instead (for benchmarks whose tasks differ
in size, e.g. CIFAR-10 followed by CIFAR-100 splits). Each sample is scored on its own head
(CL1), the shared head (CL2) or with its global label over the active classes (CL3).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.replay import mixed_loss

SAMPLINGS = ("uniform", "per_task")


@METHODS.register("joint")
class Joint(Baseline):
    summary = "joint training on the union of all tasks so far (upper bound)"
    defaults: ClassVar[dict[str, Any]] = {"sampling": "uniform"}  # or per_task

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        if cfg["joint"]["sampling"] not in SAMPLINGS:
            raise ConfigError(
                f"joint.sampling must be one of {', '.join(SAMPLINGS)}, "
                f"got {cfg['joint']['sampling']!r}."
            )

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.gen = rng.generator(cfg["seed"], "joint-batches")
        self.n_train = [t.n_train for t in bench.tasks]  # host-side bookkeeping, no tensor reads
        self.sizes = torch.tensor(self.n_train)
        self.perm, self.pos = torch.zeros(0, dtype=torch.long), 0

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        self.perm, self.pos = torch.zeros(0, dtype=torch.long), 0  # new union: new epoch

    def draw(self, task: int) -> tuple[Tensor, Tensor]:
        """(task ids, local indices) of one batch from the training data of tasks 0..task."""
        sizes, total = self.sizes[: task + 1], sum(self.n_train[: task + 1])
        bs = min(self.cfg["train"]["batch_size"], total)
        if self.hp["sampling"] == "per_task":
            tids = torch.arange(task + 1).repeat(bs // (task + 1) + 1)[:bs]
            tids = tids[torch.randperm(bs, generator=self.gen)]  # remainder to random tasks
            local = (torch.rand(bs, generator=self.gen) * sizes[tids]).long()
            return tids, local
        if self.pos + bs > len(self.perm):
            self.perm, self.pos = torch.randperm(total, generator=self.gen), 0
        g = self.perm[self.pos : self.pos + bs]
        self.pos += bs
        ends = sizes.cumsum(0)
        tids = torch.searchsorted(ends, g, right=True)
        return tids, g - (ends - sizes)[tids]

    def batch(self, task: int) -> tuple[Tensor, Tensor, Tensor]:
        """(inputs, local labels, task ids) of one joint batch, on the device."""
        tids, local = self.draw(task)
        xs, ys, ts = [], [], []
        for s in tids.unique().tolist():
            data = self.bench.tasks[s]
            x, y = data.train_batch(local[tids == s].to(data.y_train.device), self.gen)
            xs.append(x)
            ys.append(y)
            ts.append(torch.full((len(y),), s, dtype=torch.long, device=y.device))
        return torch.cat(xs), torch.cat(ys), torch.cat(ts)

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        del x, y  # the current task's batch; joint draws from the union of tasks ≤ task
        self.net.train()
        self.use_task(task)
        self.opt.zero_grad(set_to_none=True)
        loss = mixed_loss(self, *self.batch(task))
        loss.backward()
        self.opt.step()
        return loss.detach()

    def extra_state(self) -> dict[str, Any]:  # the epoch position too: jobs resume mid-task
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"].cpu())
        self.perm, self.pos = state["perm"].cpu(), state["pos"]

    def memory_bytes(self) -> dict[str, int]:
        """The whole training set of every learned task, rows and labels as stored. Counted per
        task even where a permuted benchmark's tasks share one copy of the pixels: that sharing
        is the benchmark's, a stream of tasks would bring each task's data anew."""
        learned = self.bench.tasks[: self.seen]
        return {
            "samples": sum(tensor_bytes(t.x_train) for t in learned),
            "labels": sum(tensor_bytes(t.y_train) for t in learned),
            **super().memory_bytes(),
        }
