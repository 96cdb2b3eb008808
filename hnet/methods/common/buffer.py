"""A fixed-size rehearsal buffer filled by reservoir sampling over the stream of training batches.

Why one shared buffer: A-GEM, DER++, ER-ACE and GDumb all keep "``buffer.size`` samples over
all tasks" (Mammoth's ``utils/buffer.py``, the reference implementation of the last three), so
they differ in what they do with the samples, not in how they keep them; a study compares them
at equal memory by sweeping the one ``buffer.size`` key.

Reservoir sampling (Vitter 1985, algorithm R, as Mammoth's ``reservoir``): the n-th sample of
the stream (0-based) fills slot n while the buffer is not full, else replaces a uniformly drawn
slot j ∈ [0, n] when j < size. After any prefix of the stream every sample seen is in the buffer
with the same probability size / seen. It is done for a whole batch at once: the draws of a
batch come from one call of the buffer's own generator, and when two samples of a batch draw
the same slot the later one wins, exactly as the one-at-a-time loop would leave it. The
decisions are made on the CPU (a Python count of samples seen, a CPU generator), so a step
reads nothing back from the device.

What is stored: the raw training rows as the tasks keep them (uint8 pixels, flat or (C, H, W)),
the task-local labels, the task ids and optionally a vector per sample (DER++'s logits). A
sample's network input is rebuilt with its own task's ``inputs()`` when it is drawn (as
:mod:`hnet.methods.replay` does), so permuted tasks, which share pixels and differ in their
permutation, replay correctly, and stored images of augmented tasks are cropped and flipped
afresh like new ones (draws from the generator the caller passes). The task ids are kept on the
CPU as well, so choosing among earlier tasks' samples (A-GEM) needs no device read.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hnet.data.base import Benchmark


class ReservoirBuffer:
    """``size`` samples of the stream of training batches, checkpointable with its generator."""

    def __init__(self, size: int, bench: Benchmark, generator: torch.Generator) -> None:
        self.size, self.bench, self.gen = size, bench, generator
        task0 = bench.tasks[0]
        dev = task0.x_train.device
        self.rows = torch.empty((size, *task0.x_train.shape[1:]), dtype=task0.x_train.dtype,
                                device=dev)  # fmt: skip
        # labels (n,), or targets (n, d) for regression
        self.labels = torch.empty(
            (size, *task0.y_train.shape[1:]), dtype=task0.y_train.dtype, device=dev
        )
        self.tasks = torch.empty(size, dtype=torch.long)  # on the CPU: chosen from without syncs
        self.tasks_dev = torch.empty(size, dtype=torch.long, device=dev)
        self.logits: Tensor | None = None  # (size, width) float, allocated at the first add
        self.seen = 0  # samples of the stream offered so far

    def __len__(self) -> int:
        return min(self.seen, self.size)

    # -- filling ---------------------------------------------------------------------------------
    def slots(self, n: int) -> tuple[Tensor, Tensor]:
        """Reservoir decisions for the next ``n`` samples of the stream (CPU tensors): which of
        them are stored (``src``) and where (``dst``), the later sample winning a shared slot."""
        pos = torch.arange(self.seen, self.seen + n, dtype=torch.long)
        u = torch.rand(n, generator=self.gen, dtype=torch.float64)
        drawn = (u * (pos + 1).to(torch.float64)).long().clamp_(max=pos)  # uniform in [0, pos]
        slot = torch.where(pos < self.size, pos, drawn)
        keep = slot < self.size
        src, dst = torch.nonzero(keep).squeeze(1), slot[keep]
        if len(dst):  # last writer wins: keep a sample only if no later one takes its slot
            last = torch.full((self.size,), -1, dtype=torch.long)
            last.scatter_reduce_(0, dst, src, reduce="amax")
            final = last[dst] == src
            src, dst = src[final], dst[final]
        self.seen += n
        return src, dst

    def add(self, task: int, rows: Tensor, labels: Tensor, logits: Tensor | None = None) -> None:
        """Offer a batch of ``task``'s raw rows (with local labels, and optionally a vector per
        sample) to the reservoir."""
        src, dst = self.slots(rows.shape[0])
        if logits is not None and self.logits is None:
            self.logits = torch.zeros(self.size, logits.shape[1], device=self.rows.device)
        if len(dst) == 0:
            return
        self.tasks[dst] = task
        dev = self.rows.device
        src_d, dst_d = src.to(dev), dst.to(dev)
        self.rows[dst_d] = rows.index_select(0, src_d)
        self.labels[dst_d] = labels.index_select(0, src_d)
        self.tasks_dev[dst_d] = task
        if logits is not None and self.logits is not None:
            self.logits[dst_d] = logits.detach().index_select(0, src_d).to(self.logits.dtype)

    # -- drawing ---------------------------------------------------------------------------------
    def choose(self, n: int, before_task: int | None = None) -> Tensor:
        """Up to ``n`` distinct slots drawn uniformly (CPU); with ``before_task``, only among
        samples of tasks before it (A-GEM's reference gradient is about earlier tasks only)."""
        filled = len(self)
        if before_task is None:
            return torch.randperm(filled, generator=self.gen)[:n]
        pool = torch.nonzero(self.tasks[:filled] < before_task).squeeze(1)
        return pool[torch.randperm(len(pool), generator=self.gen)[:n]]

    def inputs(self, slots: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Network inputs of the stored samples at ``slots``, each rebuilt by its own task
        (cast, scale, permutation, normalisation; a fresh crop and flip if the task augments)."""
        dev = self.rows.device
        slots_d = slots.to(dev)
        rows, tids = self.rows.index_select(0, slots_d), self.tasks[slots]
        x = torch.empty(rows.shape, device=dev)  # float inputs, shaped like the rows
        for s in tids.unique().tolist():  # one batched call per task present (few), not per row
            mask = (tids == s).to(dev)
            data, picked = self.bench.tasks[s], rows[mask]
            if data.augment is not None:
                picked = data.augment.crop_flip(picked, generator or self.gen)
            x[mask] = data.inputs(picked)
        return x

    def sample(
        self, n: int, before_task: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None] | None:
        """(inputs, local labels, task ids, stored vectors or None) of up to ``n`` samples drawn
        without replacement; None when there is nothing to draw from."""
        slots = self.choose(n, before_task)
        if len(slots) == 0:
            return None
        slots_d = slots.to(self.rows.device)
        logits = None if self.logits is None else self.logits.index_select(0, slots_d)
        labels, tids = self.labels.index_select(0, slots_d), self.tasks_dev.index_select(0, slots_d)
        return self.inputs(slots, generator), labels, tids, logits

    def all_slots(self) -> Tensor:
        return torch.arange(len(self))

    # -- accounting and checkpoints ---------------------------------------------------------------
    def memory_bytes(self) -> dict[str, int]:
        """Bytes of the stored samples, labels, task ids (and vectors), counting filled slots."""
        n = len(self)
        out = {
            "samples": n * self.rows[0].numel() * self.rows.element_size(),
            "labels": n * self.labels[0].numel() * self.labels.element_size(),
            "task_ids": n * self.tasks.element_size(),
        }
        if self.logits is not None:
            out["logits"] = n * self.logits.shape[1] * self.logits.element_size()
        return out

    def state_dict(self) -> dict[str, Any]:
        n = len(self)
        return {
            "rows": self.rows[:n].clone(),
            "labels": self.labels[:n].clone(),
            "tasks": self.tasks[:n].clone(),
            "logits": None if self.logits is None else self.logits[:n].clone(),
            "width": None if self.logits is None else self.logits.shape[1],
            "seen": self.seen,
            "gen": self.gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n, dev = state["rows"].shape[0], self.rows.device
        self.rows[:n] = state["rows"].to(dev)
        self.labels[:n] = state["labels"].to(dev)
        self.tasks[:n] = state["tasks"].cpu()
        self.tasks_dev[:n] = state["tasks"].to(dev)
        if state["width"] is not None:
            self.logits = torch.zeros(self.size, state["width"], device=dev)
            self.logits[:n] = state["logits"].to(dev)
        self.seen = state["seen"]
        self.gen.set_state(state["gen"].cpu())
