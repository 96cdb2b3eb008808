"""Experience replay: a fixed budget of stored samples, an equal share per task, replayed
alongside every later task.

Why this baseline: storing a few real samples is the simplest strong defence against
forgetting, especially class-incrementally (Chaudhry et al. 2019, "On Tiny Episodic Memories in
Continual Learning"; van de Ven et al. 2022, "Three types of incremental learning"), so it is the
reference point a method that stores no data (HNET) must be measured against.

The budget is the shared ``buffer.size`` (stored samples over all tasks, the same key for every
rehearsal method: :mod:`hnet.methods.common.budget`); task t keeps its quota,
``buffer.size // n_tasks`` (the remainder to the first tasks). The buffer is filled at
``end_task``: the job loop samples training indices itself, so the
"stream" of a task is one pass over its training set and a seeded uniform subset of it has
exactly the distribution of reservoir sampling (Vitter 1985) over that pass. It stores the raw
rows as the tasks keep them (uint8, flat or as (C, H, W) images: 3 kB per CIFAR image, so even a
large buffer is small), local labels and task ids; inputs are rebuilt with each sample's own
task's ``inputs()``, so permuted tasks (shared pixels, per-task ``perm``) replay correctly, and
replayed images of augmented tasks are cropped and flipped like fresh ones (draws from the
replay generator).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.budget import check, quotas
from hnet.methods.common.memory import tensor_bytes

SELECTIONS = ("reservoir", "class_balanced")
WEIGHTINGS = ("tasks", "equal")


def mixed_loss(m: Baseline, x: Tensor, y: Tensor, tids: Tensor) -> Tensor:
    """Task loss of a batch mixing tasks (``tids`` per sample, ``y`` local labels): each sample on
    its own task's head (CL1), on the shared head (CL2), or with its global label over the active
    classes of all tasks seen so far (CL3)."""
    if m.scenario == "cl3" and m.bench.kind != "regression":
        return m.task_loss(m.logits(x, 0, m.seen), y + tids * m.bench.head_size)
    out = m.net(x)
    hs = m.bench.head_size
    if m.net.n_heads > 1:
        out = out.view(len(x), m.net.n_heads, hs)[torch.arange(len(x), device=out.device), tids]
    return m.task_loss(out[:, :hs], y)


@METHODS.register("replay")
class Replay(Baseline):
    summary = "experience replay from a buffer of stored samples, an equal share per task"
    rehearsal: ClassVar[bool] = True  # buffer.size: the budget, an equal quota per task
    defaults: ClassVar[dict[str, Any]] = {
        "selection": "reservoir",  # or class_balanced: the same number of samples per class
        "replay_batch_size": None,  # None = train.batch_size
        # tasks: (1/t)·L_current + (1−1/t)·L_replay, every task seen weighs the same (van de Ven
        # & Tolias 2019); equal: L_current + L_replay (ER of Chaudhry et al. 2019)
        "weighting": "tasks",
    }

    # The budget (buffer.size, default 1000: 200 per task on the split benchmarks, 100 on the
    # permuted ones; van de Ven et al. 2022's budgets) and its exceptions: tuned/buffer.yaml.
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        from hnet.data import BENCHMARKS

        hp = cfg["replay"]
        for key, choices in (("selection", SELECTIONS), ("weighting", WEIGHTINGS)):
            if hp[key] not in choices:
                raise ConfigError(
                    f"replay.{key} must be one of {', '.join(choices)}, got {hp[key]!r}."
                )
        bs = hp["replay_batch_size"]
        if bs is not None and (not isinstance(bs, int) or bs < 1):
            raise ConfigError(f"replay.replay_batch_size must be ≥ 1 or null, got {bs!r}.")
        if hp["selection"] == "class_balanced" and BENCHMARKS.get(cfg["benchmark"]).kind != (
            "classification"
        ):
            raise ConfigError("replay.selection=class_balanced needs classes; use reservoir.")
        spec = BENCHMARKS.get(cfg["benchmark"])  # every task can fill its quota (declared sizes)
        sizes = spec.task_sizes(cfg["data"]) if spec.task_sizes is not None else None
        check(cfg["buffer"]["size"], sizes, spec.name)

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        # the loaded tasks (a validation split makes them smaller than the declared sizes)
        check(cfg["buffer"]["size"], [t.n_train for t in bench.tasks], bench.name)
        self.quotas = quotas(cfg["buffer"]["size"], bench.n_tasks)
        self.batch_size = self.hp["replay_batch_size"] or cfg["train"]["batch_size"]
        self.gen = rng.generator(cfg["seed"], "replay-batches")
        task0 = bench.tasks[0]
        self.buf_x = task0.x_train[:0].clone()  # raw rows, dtype as stored
        self.buf_y = task0.y_train[:0].clone()  # local labels
        self.buf_t = torch.zeros(0, dtype=torch.long, device=task0.y_train.device)

    def select(self, task: int) -> Tensor:
        """Indices into ``task``'s training set kept in the buffer, seeded by (seed, task)."""
        data, k = self.bench.tasks[task], self.quotas[task]
        gen = rng.generator(self.cfg["seed"], "replay-select", task)
        if self.hp["selection"] == "reservoir":
            return torch.randperm(data.n_train, generator=gen)[:k].sort().values
        y = data.y_train.cpu()
        classes = y.unique()
        quota = torch.full((len(classes),), k // len(classes))
        quota[torch.randperm(len(classes), generator=gen)[: k % len(classes)]] += 1
        picks = []
        for c, q in zip(classes.tolist(), quota.tolist(), strict=True):
            idx = torch.nonzero(y == c).squeeze(1)  # a class with < q samples is kept whole
            picks.append(idx[torch.randperm(len(idx), generator=gen)[:q]])
        return torch.cat(picks).sort().values

    def end_task(self, task: int) -> None:
        data = self.bench.tasks[task]
        idx = self.select(task).to(data.y_train.device)
        self.buf_x = torch.cat([self.buf_x, data.x_train[idx]])
        self.buf_y = torch.cat([self.buf_y, data.y_train[idx]])
        self.buf_t = torch.cat([self.buf_t, torch.full_like(idx, task)])

    def replay_batch(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """(inputs, local labels, task ids) drawn uniformly without replacement from the buffers
        of all earlier tasks; None while the buffer is empty."""
        if len(self.buf_t) == 0:
            return None
        pick = torch.randperm(len(self.buf_t), generator=self.gen)[: self.batch_size]
        pick = pick.to(self.buf_t.device)
        rows, y, tids = self.buf_x[pick], self.buf_y[pick], self.buf_t[pick]
        x = torch.empty(rows.shape, device=rows.device)  # float inputs, shaped like the rows
        for s in tids.unique().tolist():
            mask, data = tids == s, self.bench.tasks[s]
            picked = rows[mask]
            if data.augment is not None:
                picked = data.augment.crop_flip(picked, self.gen)
            x[mask] = data.inputs(picked)
        return x, y, tids

    def weights(self, task: int) -> tuple[float, float]:
        """(current, replay) loss weights on ``task`` once the buffer holds earlier tasks."""
        if self.hp["weighting"] == "tasks":
            return 1 / (task + 1), task / (task + 1)
        return 1.0, 1.0

    def loss_on(
        self, x: Tensor, y: Tensor, task: int, params: dict[str, Tensor] | None = None
    ) -> Tensor:
        """The current batch's loss, down-weighted once there is something to replay."""
        loss = super().loss_on(x, y, task, params)
        return loss * self.weights(task)[0] if len(self.buf_t) else loss

    def extra_loss(self, task: int) -> Tensor | None:
        batch = self.replay_batch()
        return None if batch is None else self.weights(task)[1] * mixed_loss(self, *batch)

    def extra_state(self) -> dict[str, Any]:
        return {"x": self.buf_x, "y": self.buf_y, "t": self.buf_t, "gen": self.gen.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        dev = self.buf_t.device
        self.buf_x, self.buf_y, self.buf_t = (state[k].to(dev) for k in ("x", "y", "t"))
        self.gen.set_state(state["gen"].cpu())

    def memory_bytes(self) -> dict[str, int]:
        """The stored rows (as the benchmark stores them), their labels and task ids."""
        return {
            "samples": tensor_bytes(self.buf_x),
            "labels": tensor_bytes(self.buf_y),
            "task_ids": tensor_bytes(self.buf_t),
            **super().memory_bytes(),
        }
