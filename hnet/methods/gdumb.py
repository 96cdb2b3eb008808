"""GDumb (Prabhu, Torr & Dokania 2020, "GDumb: A Simple Approach that Questions Our Progress in
Continual Learning"): keep a buffer of the stream and, whenever a model is needed, train a new
network from scratch on the buffer alone.

Why this baseline: it learns nothing from the stream except which samples to keep, so any
rehearsal method that does not beat it gains nothing from its continual updates — the lower
bound of the rehearsal family at a given buffer size.

As in Mammoth (``models/gdumb.py``): the stream only fills the reservoir buffer (a step trains
nothing and returns a loss of 0); at the end of a task the network is re-initialised and fitted
on every stored sample, in reshuffled passes over the buffer. Mammoth fits once, after the last
task; hnet fits after every task so that every row of the accuracy matrix is GDumb's model of
that moment (GDumb's own protocol retrains whenever it is evaluated). The fit takes
``gdumb.fit_iters`` steps (null: as many as every method gets per task, the fixed-iterations
protocol), with a fresh Adam at ``train.lr`` — not Mammoth's SGD with warm restarts and CutMix
(docs/fidelity.md). The new network and the fit's order come from generators of (seed, task),
so a resumed run fits the same network.

Scenarios: CL1–CL3, with the replay loss of each scenario's label space
(:func:`hnet.methods.replay.mixed_loss`); at test time it predicts like any baseline. One set
of BatchNorm statistics (the fit mixes tasks in every batch), so ``train.bn_per_task`` is
refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.rehearsal import Rehearsal, check_rehearsal
from hnet.methods.replay import mixed_loss


@METHODS.register("gdumb")
class GDumb(Rehearsal):
    summary = "GDumb: a network trained from scratch on the buffer alone after each task"
    defaults: ClassVar[dict[str, Any]] = {
        "fit_iters": None,  # steps of the fit after each task; None = the task's train steps
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        check_rehearsal(cfg, "gdumb")
        n = cfg["gdumb"]["fit_iters"]
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"gdumb.fit_iters must be an integer ≥ 1 or null, got {n!r}.")
        if cfg["train"]["bn_per_task"]:
            raise ConfigError(
                "gdumb fits one network on batches that mix tasks, so per-task BatchNorm "
                "statistics do not apply: set train.bn_per_task=false."
            )

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.remember(task, x, y)
        return torch.zeros((), device=self.device)

    def fit_steps(self, task: int) -> int:
        train = self.cfg["train"]
        if self.hp["fit_iters"] is not None:
            return self.hp["fit_iters"]
        per_task = train.get("iters_per_task")
        return per_task[task] if per_task else train["iters"]

    def end_task(self, task: int) -> None:
        with torch.random.fork_rng(devices=[]):  # leaves the global RNG stream untouched
            torch.manual_seed(rng.derive(self.cfg["seed"], "gdumb-init", task))
            self.net = self.build_net()
        self.opt = self.build_optimizer()
        self.fit(task)

    def fit(self, task: int) -> None:
        """``fit_steps`` Adam steps on reshuffled passes over every stored sample."""
        gen = rng.generator(self.cfg["seed"], "gdumb-fit", task)
        n, bs = len(self.buffer), self.cfg["train"]["batch_size"]
        if n == 0:
            return
        self.net.train()
        order, pos = torch.randperm(n, generator=gen), 0
        for _ in range(self.fit_steps(task)):
            if pos >= n:
                order, pos = torch.randperm(n, generator=gen), 0
            slots = order[pos : pos + bs]
            pos += bs
            x = self.buffer.inputs(slots, gen)
            slots_d = slots.to(self.buffer.rows.device)
            y = self.buffer.labels.index_select(0, slots_d)
            t = self.buffer.tasks_dev.index_select(0, slots_d)
            self.opt.zero_grad(set_to_none=True)
            mixed_loss(self, x, y, t).backward()
            self.opt.step()
