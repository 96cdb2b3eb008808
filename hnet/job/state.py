"""Checkpoints: save atomically, load safely, restore every RNG.

A checkpoint is one ``torch.save`` file, ``<run>/state/ckpt.pt``, holding only tensors, numbers,
strings, lists, tuples and dicts, so it loads with ``torch.load(weights_only=True)`` (no
arbitrary pickles). It is written atomically (:mod:`hnet.files`): a crash mid-write leaves the
previous checkpoint intact.

Contents: the method's state (weights, optimizer moments, regularizer targets, buffers, its own
generators), the job's progress (next task and step, R, b, the task-inference matrix, training
seconds, the data-order sampler, the byte length of losses.jsonl) and the global RNG states
(torch, CUDA, numpy, python). Restoring all of them makes a resumed job bit-identical on CPU.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hnet.files import save_torch

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
    save_torch(path, {"format": FORMAT, **payload})


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
