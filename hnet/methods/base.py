"""The interface every continual-learning method implements.

The job loop (:mod:`hnet.train`) owns data order, evaluation schedule and bookkeeping; a method
only says how to take one optimisation step on the current task and how to produce outputs for
a task. Each method declares its name, the scenarios it supports and its hyperparameters with
defaults (they become the ``<method>`` section of the job config), so adding a method is one
file with ``@METHODS.register("name")`` plus one import line in ``hnet/methods/__init__.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.data.base import Benchmark


class Method:
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    scenarios: ClassVar[tuple[str, ...]] = ("cl1",)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: dict[str, Any], bench: Benchmark, device: torch.device) -> None:
        self.cfg, self.bench, self.device = cfg, bench, device
        self.hp = cfg[self.name]
        self.scenario = cfg["scenario"]

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Semantic checks of this method's hyperparameters; raise ConfigError naming the key."""

    # -- training -------------------------------------------------------------------------------
    def begin_task(self, task: int) -> None:
        """Called before the first step on ``task``."""

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """One optimisation step on a batch of ``task``; returns the (detached) loss."""
        raise NotImplementedError

    def end_task(self, task: int) -> None:
        """Called after the last step on ``task`` (consolidation, snapshots, buffers)."""

    # -- evaluation -----------------------------------------------------------------------------
    def outputs(self, x: Tensor, task: int) -> Tensor:
        """Network outputs for ``task``'s problem: ``(B, head_size)``."""
        raise NotImplementedError

    def task_loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.bench.kind == "regression":
            return F.mse_loss(out, y)
        return F.cross_entropy(out, y)

    @torch.no_grad()
    def evaluate(self, task: int) -> float:
        """Test score of ``task``: accuracy in % (classification) or −MSE (regression), so that
        higher is better for every benchmark and the metric formulas keep their meaning."""
        data = self.bench.tasks[task]
        total = 0.0
        for x, y in data.test_batches(self.cfg["train"]["eval_batch_size"]):
            out = self.outputs(x, task)
            if self.bench.kind == "regression":
                total -= (out - y).pow(2).sum().item()
            else:
                total += (out.argmax(-1) == y).sum().item()
        return total / data.n_test * (100.0 if self.bench.kind != "regression" else 1.0)

    def param_counts(self) -> dict[str, Any]:
        """``n_params_target`` and, for hypernetwork methods, ``n_params_hnet`` and
        ``compression_ratio``."""
        return {}
