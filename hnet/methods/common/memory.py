"""Counting what a method keeps: bytes of tensors, modules and regularizer targets.

``Method.memory_bytes`` reports, by kind, what a method holds beyond the current network's
weights to protect the tasks it has learned and to learn one more: stored samples, importance
values and anchors, embeddings, regularizer targets, copies of earlier models, generators. Each
number is the bytes of the tensors as they are stored (their dtype, not float32 by assumption),
so a uint8 image counts one byte per pixel and an int64 label eight.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def tensor_bytes(*items: Any) -> int:
    """Bytes of every tensor in ``items`` (tensors, modules, dicts, lists, tuples or None,
    nested): ``numel · element_size`` each; a module counts its parameters and buffers."""
    total = 0
    for item in items:
        if item is None:
            continue
        if isinstance(item, Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, torch.nn.Module):
            total += tensor_bytes(list(item.parameters()), list(item.buffers()))
        elif isinstance(item, dict):
            total += tensor_bytes(*item.values())
        elif isinstance(item, (list, tuple)):
            total += tensor_bytes(*item)
    return total


def parameter_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters only (its weights, without BatchNorm statistics)."""
    return tensor_bytes(list(module.parameters()))


@torch.no_grad()
def regularizer_bytes(reg: Any, hnet: Any, n_tasks: int) -> int:
    """Bytes an output regularizer configured like ``reg`` freezes to protect the first
    ``n_tasks`` tasks of ``hnet`` (targets, their Gram-form features and output layer, or a
    snapshot of Θ, whatever its mode and implementation choose): a fresh regularizer of the same
    settings freezes them, so the count is what the method will hold while it learns the next
    task. ``reg`` itself is untouched."""
    if n_tasks == 0:
        return 0
    probe = type(reg)(reg.mode, reg.n_sample, reg.head_mask, reg.impl)
    probe.begin_task(hnet, n_tasks)
    return tensor_bytes(probe.state())
