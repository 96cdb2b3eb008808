"""Task-level checkpoints: save atomically, load safely, restore every RNG.

A checkpoint is one ``torch.save`` file, ``<run>/state/ckpt.pt``, holding only tensors, numbers,
strings, lists, tuples and dicts, so it loads with ``torch.load(weights_only=True)`` (no
arbitrary pickles). It is written to a temp file in the same directory and renamed over the old
one: a crash mid-write leaves the previous checkpoint intact.

Contents: the method's state (weights, optimizer moments, regularizer targets, buffers, its own
generators), the job's progress (next task and step, R, b, the task-inference matrix, training
seconds, the data-order sampler, the byte length of losses.jsonl) and the global RNG states
(torch, CUDA, numpy, python). Restoring all of them makes a resumed job bit-identical on CPU.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write: temp file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors mapped to ``device``), or None if there is none."""
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')} is not {FORMAT}")
    # RNG states must stay on the CPU whatever the training device.
    state["rng"]["torch"] = state["rng"]["torch"].cpu()
    state["rng"]["cuda"] = [s.cpu() for s in state["rng"]["cuda"]]
    return state


class Sampler:
    """Data order: reshuffled epochs drawn from one seeded generator; checkpointable mid-task."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)
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
