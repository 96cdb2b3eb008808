"""`Rehearsal`: a baseline network plus a reservoir buffer fed by the stream of training batches.

What A-GEM, DER++, ER-ACE and GDumb share: the shared ``buffer.size`` budget
(:data:`hnet.config.REHEARSAL_DEFAULTS`), a :class:`~hnet.methods.common.buffer.ReservoirBuffer`
with its own seeded generator, the raw rows of the batch being trained on (the job loop
announces their indices with :meth:`Method.see_rows` before each ``train_step``, so the buffer
stores pixels as the tasks keep them, not the already transformed inputs), checkpoints and
memory accounting. Each method adds only its loss or gradient rule.

Label spaces of a replayed batch, which mixes tasks: each sample on its own task's head (CL1),
on the shared head (CL2), or with its global label over the classes of every task seen so far
(CL3) — :func:`hnet.methods.replay.mixed_loss`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.buffer import ReservoirBuffer


def check_rehearsal(cfg: dict[str, Any], method: str) -> None:
    """The shared ``buffer.size`` and the method's ``replay_batch_size``."""
    size = cfg["buffer"]["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"buffer.size must be an integer ≥ 1 (stored samples), got {size!r}.")
    bs = cfg[method].get("replay_batch_size")
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise ConfigError(f"{method}.replay_batch_size must be ≥ 1 or null, got {bs!r}.")


class Rehearsal(Baseline):
    rehearsal: ClassVar[bool] = True

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        check_rehearsal(cfg, cls.name)

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        gen = rng.generator(cfg["seed"], self.name, "buffer")
        self.buffer = ReservoirBuffer(cfg["buffer"]["size"], bench, gen)
        self.replay_bs = self.hp.get("replay_batch_size") or cfg["train"]["batch_size"]
        self.batch_idx: Tensor | None = None

    def see_rows(self, task: int, idx: Tensor) -> None:
        self.batch_idx = idx

    def batch_rows(self, task: int, x: Tensor) -> Tensor:
        """The stored rows of the batch ``x`` being trained on (announced by ``see_rows``)."""
        idx = self.batch_idx
        if idx is None or idx.shape[0] != x.shape[0]:
            raise RuntimeError(
                f"{self.name} stores the rows of its training batches: call "
                "see_rows(task, idx) with the batch's training-row indices before train_step "
                "(the job loop does)."
            )
        data = self.bench.tasks[task]
        return data.x_train.index_select(0, idx.to(data.x_train.device))

    def remember(self, task: int, x: Tensor, y: Tensor, logits: Tensor | None = None) -> None:
        """Offer the current batch to the reservoir (after the step, as Mammoth does)."""
        self.buffer.add(task, self.batch_rows(task, x), y, logits)

    def memory_bytes(self) -> dict[str, int]:
        return self.buffer.memory_bytes()

    def extra_state(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
