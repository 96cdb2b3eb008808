"""Checkpoints: save atomically, load safely, restore every RNG.

A checkpoint is one ``torch.save`` file, ``<run>/state/ckpt.pt``, holding only tensors, numbers,
strings, lists, tuples and dicts, so it loads with ``torch.load(weights_only=True)`` (no
arbitrary pickles). It is written atomically (:mod:`hnet.files`): a crash mid-write leaves the
previous checkpoint intact.

Contents: the method's state (weights, optimizer moments, regularizer targets, buffers, its own
generators), the job's progress (next task and step, R, b, the task-inference matrix, training
seconds, the data-order sampler, the byte length of losses.jsonl) and the global RNG states
(torch, CUDA, numpy, python). Restoring all of them makes a resumed job bit-identical on CPU.

A checkpoint verifies itself (format 2): it carries the run's resolved config (and its run key),
so a run directory whose config.json is gone can still be checked against the job's config, and
the bytes of losses.jsonl up to its ``log_offset``, so a damaged loss log can be checked and
restored. Each save first renames the current checkpoint to ``ckpt.prev.pt``: one earlier good
checkpoint to fall back on. Format 1 checkpoints (neither of these) still load.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hnet.errors import HnetError
from hnet.files import save_torch

FORMAT = 2
READABLE = (1, 2)
REQUIRED = ("task", "step", "method", "R", "b", "TI", "train_seconds", "sampler", "rng")


class CheckpointDamaged(HnetError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint)."""


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


def save(path: Path, payload: dict[str, Any], keep: Path | None = None) -> None:
    """Write the checkpoint atomically; the one it replaces is renamed to ``keep`` first."""
    save_torch(path, {"format": FORMAT, **payload}, keep)


def load(path: Path, device: torch.device | str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors mapped to ``device``), or None if there is none;
    :class:`CheckpointDamaged` if it cannot be read whole."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated zip, garbage, an unpicklable object: all "damaged"
        raise CheckpointDamaged(f"{path} is damaged ({type(e).__name__}: {_short(e)})") from e
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        what = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointDamaged(f"{path} is not an hnet checkpoint (format {what})")
    if missing := [k for k in REQUIRED if k not in state]:
        raise CheckpointDamaged(f"{path} is damaged (no {', '.join(missing)})")
    # RNG states must stay on the CPU whatever the training device.
    state["rng"]["torch"] = state["rng"]["torch"].cpu()
    state["rng"]["cuda"] = [s.cpu() for s in state["rng"]["cuda"]]
    return state


def _short(e: Exception) -> str:
    """The first sentence of an error (torch's zip reader adds a paragraph of advice)."""
    text = " ".join(str(e).split()).split(". ")[0]
    return text if len(text) <= 160 else text[:157] + "..."
