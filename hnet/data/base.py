"""Benchmark containers: whole datasets as tensors on the training device.

The (small) datasets live on the training device; a batch is an index slice, never a
DataLoader per step. Images may be kept as uint8 (4x less memory) and are cast, scaled and, for
permuted benchmarks, permuted on the device when a batch is taken, so 100 permuted tasks share
one copy of the pixels. Image benchmarks keep (n, C, H, W) rows and may add an
:class:`~hnet.data.augment.ImageAugment` (normalisation, and random crop/flip for training batches)
that is applied on the device, batched; without one, batches are exactly as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from hnet.data.augment import ImageAugment
from hnet.registry import Registry


@dataclass
class TaskData:
    """One task's train and test split.

    ``y`` holds *local* labels ``0..head_size-1`` (float targets of shape (n, 1) for regression);
    ``classes`` are the global class ids they stand for, used to build class-incremental labels.
    ``augment`` (image tasks only) normalises every batch and randomly crops/flips training
    batches; ``None`` leaves inputs as cast, scaled and permuted rows.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[int, ...] = ()
    perm: Tensor | None = None  # input permutation (indices into the flat input), applied per batch
    scale: float = 1.0  # multiplies the inputs after the cast to float (1/255 for uint8 images)
    augment: ImageAugment | None = None  # image normalisation (+ random crop/flip when training)
    # Validation rows held out of the training data (data.val_fraction > 0, hnet.data.validation);
    # None = no validation split. Scored like the test rows, never trained on.
    x_val: Tensor | None = None
    y_val: Tensor | None = None

    def inputs(self, x: Tensor) -> Tensor:
        """Raw stored rows → float network inputs (cast, scale, permute, normalise), on x's
        device. Deterministic: no crop or flip, so replay buffers and evaluation use it."""
        x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        if self.perm is not None:
            x = x.index_select(1, self.perm)
        if self.augment is not None:
            x = self.augment.normalize(x)
        return x

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_test(self) -> int:
        return self.x_test.shape[0]

    def train_batch(
        self, idx: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Inputs and labels of training rows ``idx``, randomly augmented if the task says so.

        ``generator`` (a CPU generator) drives the crops and flips; the same generator state
        gives the same batch on any device. It is only consumed when the task augments, and
        ``None`` falls back to torch's global CPU generator.
        """
        # index_select, not x[idx]: the same rows, without advanced indexing's general path
        # (128 rows of 784 bytes: 4 µs instead of 29 µs, every step)
        idx = idx.to(self.x_train.device)  # a no-op where the caller put it already
        rows = self.x_train.index_select(0, idx)
        if self.augment is not None:
            rows = self.augment.crop_flip(rows, generator)
        return self.inputs(rows), self.y_train.index_select(0, idx)

    def test_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        return self.eval_batches("test", batch_size)

    def eval_rows(self, split: str) -> tuple[Tensor, Tensor]:
        """The stored rows and labels of an evaluation split: ``test`` or ``val``."""
        if split == "test":
            return self.x_test, self.y_test
        if split == "val" and self.x_val is not None and self.y_val is not None:
            return self.x_val, self.y_val
        raise ValueError(f"task has no {split!r} split (validation needs data.val_fraction > 0)")

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Deterministic input batches of the ``test`` or ``val`` rows, in stored order."""
        x, y = self.eval_rows(split)
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            yield self.inputs(x[sl]), y[sl]


@dataclass
class Benchmark:
    """A sequence of tasks plus what a network needs to know about them."""

    name: str
    tasks: list[TaskData]
    in_dim: int
    head_size: int  # outputs of one task head: classes per task (1 for regression)
    kind: str = "classification"  # or "regression"
    # Image shape (C, H, W) of one input, for convolutional targets; None for inputs that are
    # no image (toy regression, 8×8 digits). Tasks store rows either in this shape (CIFAR:
    # (n, 3, 32, 32)) or flat (MNIST family: (n, 784), which conv targets reshape); ``in_dim``
    # is the flat size (MLPs flatten image rows).
    in_shape: tuple[int, int, int] | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def digest(self) -> str:
        """A short fingerprint of the data the tasks hold (the MLflow runs' dataset digest):
        every task's split sizes, all its labels and its first training inputs as the network
        sees them (a permutation of permuted benchmarks included). Cheap: no full pass over
        the inputs."""
        import hashlib

        h = hashlib.sha256(f"{self.name} {self.in_dim} {self.head_size}".encode())
        for t in self.tasks:
            h.update(f"{t.n_train} {t.n_test}".encode())
            for labels in (t.y_train, t.y_test):
                h.update(labels.detach().cpu().contiguous().numpy().tobytes())
            rows = t.inputs(t.x_train[:64])
            h.update(rows.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def has_validation(self) -> bool:
        """Do the tasks hold out validation rows (``data.val_fraction`` > 0)?"""
        return all(t.x_val is not None for t in self.tasks)

    def to(self, device: torch.device | str) -> Benchmark:
        """Move every task; tasks that shared storage (permuted benchmarks) keep sharing it."""
        moved: dict[int, Tensor] = {}

        def mv(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            if id(t) not in moved:
                moved[id(t)] = t.to(device)
            return moved[id(t)]

        tasks = [
            dataclasses.replace(
                t,
                x_train=mv(t.x_train),
                y_train=mv(t.y_train),
                x_test=mv(t.x_test),
                y_test=mv(t.y_test),
                perm=mv(t.perm),
                x_val=mv(t.x_val),
                y_val=mv(t.y_val),
            )
            for t in self.tasks
        ]
        return dataclasses.replace(self, tasks=tasks)


Loader = Callable[[dict[str, Any], int], Benchmark]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registry entry: how to build a benchmark and its default (official) settings.

    ``load(data_cfg, seed)`` returns the benchmark on the CPU; ``data_cfg`` is the resolved
    ``data`` section of the job config (``dir``, ``download`` and the benchmark's own keys).
    ``defaults`` are merged into the job config under the benchmark: sections ``data``,
    ``target``, ``train`` and the key ``size`` (the default hypernetwork size preset). A
    method's values for a benchmark live in ``hnet/methods/tuned/``, not here.

    ``task_sizes(data_cfg)`` (optional) gives the number of training examples of every task
    without reading any data, from the dataset's known sizes; ``train.epochs`` needs it to turn
    epochs into steps when the config is resolved. The job checks it against the loaded data.
    """

    name: str
    description: str
    load: Loader
    defaults: dict[str, Any] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ("cl1", "cl2", "cl3")
    kind: str = "classification"
    task_sizes: Callable[[dict[str, Any]], list[int]] | None = None


BENCHMARKS = Registry[BenchmarkSpec]("benchmark")
