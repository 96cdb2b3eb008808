"""The interface every continual-learning method implements.

The training loop (:mod:`hnet.job.loop`) owns data order, evaluation schedule and
bookkeeping; a method only says how to take one optimisation step on the current task and how
to produce outputs for a task. Each method declares its name, the scenarios it supports and its
hyperparameters with defaults (they become the ``<method>`` section of the job config), so
adding a method is one file with ``@METHODS.register("name")`` plus one import line in
``hnet/methods/__init__.py``; official or tuned hyperparameters per benchmark go in
``hnet/methods/tuned/<name>.yaml``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.data.base import Benchmark
from hnet.registry import Registry
from hnet.scenarios import n_heads

METHODS: Registry = Registry("method", name_attr="name")


class Method:
    name: ClassVar[str] = ""  # set by @METHODS.register(name)
    summary: ClassVar[str] = ""
    scenarios: ClassVar[tuple[str, ...]] = ("cl1",)
    # Does the hypernetwork size axis (presets, cr<ratio>) apply? Study grids multiply only
    # these methods by the study's sizes.
    sized: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    # The tuned/<file>.yaml whose values apply (a variant may share its parent's: online_ewc).
    tuned_as: ClassVar[str | None] = None
    # The benchmarks it supports; None = every benchmark (generative replay models flat pixels in
    # [0, 1], so the replay family names the MNIST-like ones).
    benchmarks: ClassVar[tuple[str, ...] | None] = None
    # Does it keep a generator? The job then saves a grid of its samples (samples.npz) that the
    # report draws.
    generative: ClassVar[bool] = False
    # Can one process train several seeds of it at once, parameters stacked on a seed axis
    # (hnet.methods.common.packed)? Declared per class: a subclass that changes the step says False.
    packable: ClassVar[bool] = False
    # Does it store training samples (a rehearsal buffer)? Then its resolved config has the shared
    # ``buffer`` section (``buffer.size``: stored samples over all tasks), one key for every
    # rehearsal method, so a study sweeps the buffer size of all of them with one axis.
    rehearsal: ClassVar[bool] = False

    def __init__(self, cfg: dict[str, Any], bench: Benchmark, device: torch.device) -> None:
        self.cfg, self.bench, self.device = cfg, bench, device
        self.hp = cfg[self.name]
        self.scenario = cfg["scenario"]
        self.seen = 0  # tasks begun so far

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Semantic checks of this method's hyperparameters; raise ConfigError naming the key."""

    # -- training -------------------------------------------------------------------------------
    def begin_task(self, task: int) -> None:
        """Called before the first step on ``task``; subclasses call ``super().begin_task``."""
        self.seen = task + 1

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """One optimisation step on a batch of ``task``; returns the (detached) loss."""
        raise NotImplementedError

    def see_rows(self, task: int, idx: Tensor) -> None:
        """Called with the training-row indices of ``task`` that form the batch of the next
        ``train_step``. Rehearsal methods store those raw rows (as the task keeps them, before
        the cast, permutation and augmentation that made the batch); others ignore it."""

    def end_task(self, task: int) -> None:
        """Called after the last step on ``task`` (consolidation, snapshots, buffers)."""

    def scale_lr(self, factor: float) -> None:
        """Set every optimizer's learning rate to its configured rate times ``factor`` (the job
        calls this when ``train.lr_schedule`` changes the factor)."""
        raise NotImplementedError(f"{self.name} does not support train.lr_schedule")

    def task_loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.bench.kind == "regression":
            return F.mse_loss(out, y)
        return F.cross_entropy(out, y)

    # -- scenarios -------------------------------------------------------------------------------
    def n_heads(self) -> int:
        """Output heads of the target net: one per task, except one shared head in CL2."""
        return n_heads(self.scenario, self.bench.n_tasks)

    def active_tasks(self, task: int) -> int:
        """How many task heads/embeddings are candidates at test time: the tasks trained so far
        (at least up to ``task``, so scores before training are defined too)."""
        return max(self.seen, task + 1)

    def scenario_labels(self, y: Tensor, task: int) -> Tensor:
        """Labels in the scenario's label space: global class ids in CL3, task-local otherwise."""
        return y + task * self.bench.head_size if self.scenario == "cl3" else y

    # -- evaluation -----------------------------------------------------------------------------
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        """Predictions for inputs of ``task`` in the scenario's label space (regression: values),
        plus the inferred task ids when the method infers them (else None). In CL2/CL3 ``task``
        must not be used to pick the output (no task identity at test time)."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, task: int, split: str = "test") -> tuple[float, float | None]:
        """Test score of ``task`` — accuracy in % (classification) or −MSE (regression), so that
        higher is better everywhere — and the task-inference accuracy in % (or None).
        ``split="val"`` scores the task's validation rows instead (data.val_fraction > 0)."""
        data = self.bench.tasks[task]
        n = data.eval_rows(split)[0].shape[0]
        total, inferred_ok, inferred_any = 0.0, 0, False
        for x, y in data.eval_batches(split, self.cfg["train"]["eval_batch_size"]):
            pred, inferred = self.predict(x, task)
            if self.bench.kind == "regression":
                total -= (pred - y).pow(2).sum().item()
            else:
                total += (pred == self.scenario_labels(y, task)).sum().item()
            if inferred is not None:
                inferred_any = True
                inferred_ok += (inferred == task).sum().item()
        scale = 1.0 if self.bench.kind == "regression" else 100.0
        ti = 100.0 * inferred_ok / n if inferred_any else None
        return total / n * scale, ti

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after a task boundary: tensors, numbers, strings,
        lists and dicts only (loadable with ``torch.load(weights_only=True)``)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def param_counts(self) -> dict[str, Any]:
        """``n_params_target`` and, for hypernetwork methods, ``n_params_hnet`` and
        ``compression_ratio``."""
        return {}

    def memory_bytes(self) -> dict[str, int]:
        """What the method keeps beyond the current network's weights, in bytes, by kind
        (``samples``, ``labels``, ``logits``, ``fisher``, ``embeddings``, ``targets``, ``masks``,
        ``generator`` …). The loop records it after every task's ``end_task``: memory is a result,
        because methods are only comparable at equal memory. Count what a checkpoint of the
        method must hold to continue, not transient work buffers."""
        return {}

    def extra_results(self) -> dict[str, Any]:
        """Method-specific, JSON-serialisable results added to metrics.json after training
        (hnet: the learned task embeddings, which the report projects with PCA)."""
        return {}

    def sample_grid(self) -> dict[str, Any] | None:
        """Generative methods: a few generated inputs per earlier task after the last task, as
        numpy arrays ``images`` (rows, samples, H, W; uint8) and ``tasks`` (rows,), which the
        job saves as ``samples.npz`` so the report can draw them without torch."""
        return None
