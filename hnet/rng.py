"""One seed, many independent random streams.

A job has one ``seed``; it must fix initialisation, permutations, data order, regularizer
subsets, replay buffers and everything else, and two of these must never share a stream (drawing
one more subset must not shift the data order). Every consumer therefore derives its own stream
from ``(seed, purpose, ...)`` here, and nothing else in hnet seeds a generator. The derivation
goes through NumPy's ``SeedSequence`` (designed for exactly this: well-mixed, independent child
seeds from structured keys), so streams for different purposes, tasks or seeds do not collide.
"""

from __future__ import annotations

import random
import zlib

import numpy as np

MAX_SEED = 2**32 - 1  # the largest job seed every RNG (NumPy's legacy seeding included) takes


def _key(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    if isinstance(part, bool) or not isinstance(part, (int, np.integer)) or part < 0:
        raise ValueError(f"random stream keys are non-negative ints or strings, got {part!r}")
    return int(part)


def derive(seed: int, *purpose: int | str) -> int:
    """A 63-bit seed for the stream named by ``purpose`` (strings and task indices)."""
    seq = np.random.SeedSequence([_key(seed), *(_key(p) for p in purpose)])
    lo, hi = seq.generate_state(2, dtype=np.uint32)
    return (int(hi) << 31 | int(lo) >> 1) & (2**63 - 1)


def generator(seed: int, *purpose: int | str, device: str = "cpu"):
    """A fresh ``torch.Generator`` for ``(seed, *purpose)``; use it for one purpose only."""
    import torch

    return torch.Generator(device=device).manual_seed(derive(seed, *purpose))


def numpy_generator(seed: int, *purpose: int | str) -> np.random.Generator:
    return np.random.default_rng(derive(seed, *purpose))


def seed_globals(seed: int, *purpose: int | str) -> None:
    """Seed the global RNGs (torch, NumPy, Python) for code that draws from them, chiefly
    ``nn.Module`` initialisation. Default purpose: ``init``."""
    import torch

    s = derive(seed, *(purpose or ("init",)))
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
