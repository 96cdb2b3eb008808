"""Data order: which training examples form each batch.

Reshuffled epochs drawn from one generator of the job's seed, so the order is fixed by the seed
alone and a checkpoint taken mid-epoch resumes the very same sequence of batches.
"""

from __future__ import annotations

from typing import Any

import torch

from hnet import rng


class Sampler:
    """Index batches of reshuffled epochs; checkpointable mid-task."""

    def __init__(self, seed: int) -> None:
        self.gen = rng.generator(seed, "data-order")
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def start_task(self, n: int) -> None:
        self.perm, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self, batch_size: int) -> torch.Tensor:
        assert self.perm is not None
        n = len(self.perm)
        batch_size = min(batch_size, n)
        if self.pos + batch_size > n:
            self.perm, self.pos = torch.randperm(n, generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + batch_size]
        self.pos += batch_size
        return idx

    def state(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"].cpu())
        self.perm = None if state["perm"] is None else state["perm"].cpu()
        self.pos = state["pos"]
