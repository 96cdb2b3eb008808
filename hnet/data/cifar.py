"""The Split CIFAR benchmarks: task sequences of CIFAR-10 / CIFAR-100 classes, their heads,
their training protocols and their registration.

Benchmarks (local labels 0..c-1 per task; ``classes`` are global and distinct across the
sequence, so class-incremental labels work):

* ``split_cifar10_100``: task 1 = all 10 CIFAR-10 classes, tasks 2..n = CIFAR-100 classes
  0-9, 10-19, ... (the paper's forward-transfer benchmark; ``data.n_tasks`` = 6). CIFAR-100
  class k gets the global id 10 + k, after CIFAR-10's 0..9.
* ``split_cifar10``: 5 tasks of 2 classes; ``split_cifar100``: 10 tasks of 10 classes.

Images stay uint8 in (n, 3, 32, 32) (NCHW, 150 MB for CIFAR-10 on the device instead of 600 MB as
float) with ``scale=1/255``; each task carries an :class:`~hnet.data.augment.ImageAugment`:
per-channel normalisation with the dataset's mean/std (``data.normalize``) and, for training
batches, random crop with zero padding 4 plus horizontal flip (``data.augment``).

The files are found (or downloaded, or repaired) by :mod:`hnet.data.cifar_sources` and read and
validated by :mod:`hnet.data.cifar_format`; this module only assembles tasks from the arrays.

Two protocols of the paper are registered: the ResNet-32 one under the plain names and the
ZenkeNet one as ``split_cifar10_100_zenke`` (the same tasks; its own target, training length,
optimizer and inputs), so a study picks the protocol on its benchmark axis.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import partial
from typing import Any

from hnet.data.augment import ImageAugment
from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec, TaskData
from hnet.data.cifar_format import IMAGE_SHAPE, LAYOUTS, ROW_BYTES, Arrays, CifarLayout
from hnet.data.cifar_sources import load_cifar
from hnet.data.tasks import split_tasks
from hnet.errors import ConfigError

CROP_PAD = 4

# --- task sequences ----------------------------------------------------------------------------


def _settings(bench: str, data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's data defaults under ``data_cfg`` (load_benchmark already merges them;
    this keeps direct ``spec.load`` calls on the same protocol)."""
    return {**BENCHMARKS.get(bench).defaults["data"], **data_cfg}


def image_augment(layout: CifarLayout, cfg: dict[str, Any]) -> ImageAugment | None:
    """The per-task transform the ``augment`` / ``normalize`` data settings ask for."""
    augment, normalize = bool(cfg["augment"]), bool(cfg["normalize"])
    if not (augment or normalize):
        return None
    return ImageAugment(
        mean=layout.mean if normalize else None,
        std=layout.std if normalize else None,
        pad=CROP_PAD if augment else 0,
        flip=augment,
    )


def _int_setting(cfg: dict[str, Any], key: str, hi: int) -> int:
    """``cfg[key]`` (default ``hi``), which must be an int in 1..hi."""
    value = cfg.get(key, hi)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ConfigError(f"data.{key} must be an integer in 1..{hi}, got {value!r}.")
    return value


def class_tasks(
    arrays: Arrays,
    n_tasks: int,
    classes_per_task: int,
    augment: ImageAugment | None,
    class_offset: int = 0,
) -> list[TaskData]:
    """Tasks of consecutive classes (task t = classes t*c .. t*c+c-1); global ids shifted by
    ``class_offset`` so datasets chained in one sequence keep distinct class ids."""
    tasks = split_tasks(*arrays, classes_per_task, n_tasks * classes_per_task, scale=1 / 255)
    return [
        dataclasses.replace(t, classes=tuple(c + class_offset for c in t.classes), augment=augment)
        for t in tasks
    ]


def _benchmark(name: str, tasks: list[TaskData], head_size: int) -> Benchmark:
    return Benchmark(name, tasks, ROW_BYTES, head_size, in_shape=IMAGE_SHAPE)


def load_split_cifar10_100(bench: str, data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """Task 1 = CIFAR-10, then CIFAR-100 in blocks of 10 classes (ids offset by 10)."""
    del seed  # the class split is fixed by the protocol
    cfg = _settings(bench, data_cfg)
    n_tasks = _int_setting(cfg, "n_tasks", 11)
    names = ["CIFAR10", "CIFAR100"] if n_tasks > 1 else ["CIFAR10"]
    loaded = load_cifar(names, cfg)
    c10, c100 = LAYOUTS["CIFAR10"], LAYOUTS["CIFAR100"]
    tasks = class_tasks(loaded[0], 1, 10, image_augment(c10, cfg))
    if n_tasks > 1:
        aug = image_augment(c100, cfg)
        tasks += class_tasks(loaded[1], n_tasks - 1, 10, aug, class_offset=c10.n_classes)
    return _benchmark(bench, tasks, head_size=10)


def load_split_one(dataset: str, bench: str, data_cfg: dict[str, Any], seed: int) -> Benchmark:
    """``n_tasks`` tasks of ``classes_per_task`` consecutive classes of one dataset."""
    del seed
    cfg, layout = _settings(bench, data_cfg), LAYOUTS[dataset]
    cpt = _int_setting(cfg, "classes_per_task", layout.n_classes)
    if layout.n_classes % cpt:
        raise ConfigError(
            f"data.classes_per_task={cpt} does not divide the {layout.n_classes} classes."
        )
    n_tasks = _int_setting(cfg, "n_tasks", layout.n_classes // cpt)  # default: all classes
    (arrays,) = load_cifar([dataset], cfg)
    tasks = class_tasks(arrays, n_tasks, cpt, image_augment(layout, cfg))
    return _benchmark(bench, tasks, head_size=cpt)


# --- task sizes (no files read) ----------------------------------------------------------------

# Training images per class of the real datasets: what train.epochs counts with when the config
# is resolved (the job checks the loaded data against it).
TRAIN_PER_CLASS = {"CIFAR10": 5000, "CIFAR100": 500}


def sizes_cifar10_100(bench: str, data_cfg: dict[str, Any]) -> list[int]:
    """50 000 (all of CIFAR-10), then 5 000 per 10-class CIFAR-100 task."""
    n_tasks = _int_setting(_settings(bench, data_cfg), "n_tasks", 11)
    return [10 * TRAIN_PER_CLASS["CIFAR10"]] + [10 * TRAIN_PER_CLASS["CIFAR100"]] * (n_tasks - 1)


def sizes_split_one(dataset: str, bench: str, data_cfg: dict[str, Any]) -> list[int]:
    cfg, layout = _settings(bench, data_cfg), LAYOUTS[dataset]
    cpt = _int_setting(cfg, "classes_per_task", layout.n_classes)
    n_tasks = _int_setting(cfg, "n_tasks", layout.n_classes // cpt)
    return [cpt * TRAIN_PER_CLASS[dataset]] * n_tasks


# --- registration ------------------------------------------------------------------------------

# The ResNet-32 protocol: Adam 1e-3, batch 32, 200 epochs per task with the step schedule,
# crop + flip augmentation and per-channel normalisation, linear chunked hypernetwork (β and head
# masking: tuned/hnet.yaml).
RESNET_DEFAULTS: dict[str, Any] = {
    "data": {"augment": True, "normalize": True, "check_counts": True},
    "target": {"kind": "resnet32"},
    "train": {"batch_size": 32, "lr": 1e-3, "epochs": 200, "lr_schedule": "resnet_cifar"},
    "size": "cifar_resnet",
}
# The ZenkeNet protocol (the paper's appendix, Zenke et al. 2017's setting): Adam 1e-4 with
# β1 = 0.5, batch 256, 80 epochs per task, no augmentation, inputs in [0, 1] (no normalisation).
ZENKE_DEFAULTS: dict[str, Any] = {
    "data": {"augment": False, "normalize": False, "check_counts": True},
    "target": {"kind": "zenke"},
    "train": {"batch_size": 256, "lr": 1e-4, "adam_betas": [0.5, 0.999], "epochs": 80},
    "size": "cifar_zenke",
}


def _defaults(protocol: dict[str, Any], **data: Any) -> dict[str, Any]:
    out = copy.deepcopy(protocol)
    out["data"].update(data)
    return out


_TASKS_10_100 = "CIFAR-10, then 5 tasks of 10 CIFAR-100 classes, 3x32x32 inputs"
for _name, _desc, _load, _sizes, _defs in (
    (
        "split_cifar10_100",
        f"Split CIFAR-10/100 (ResNet-32 protocol): {_TASKS_10_100}",
        partial(load_split_cifar10_100, "split_cifar10_100"),
        partial(sizes_cifar10_100, "split_cifar10_100"),
        _defaults(RESNET_DEFAULTS, n_tasks=6),
    ),
    (
        "split_cifar10_100_zenke",
        f"Split CIFAR-10/100 (ZenkeNet protocol): {_TASKS_10_100}",
        partial(load_split_cifar10_100, "split_cifar10_100_zenke"),
        partial(sizes_cifar10_100, "split_cifar10_100_zenke"),
        _defaults(ZENKE_DEFAULTS, n_tasks=6),
    ),
    (
        "split_cifar10",
        "Split CIFAR-10: 5 tasks of 2 classes, 3x32x32 inputs",
        partial(load_split_one, "CIFAR10", "split_cifar10"),
        partial(sizes_split_one, "CIFAR10", "split_cifar10"),
        _defaults(RESNET_DEFAULTS, classes_per_task=2),
    ),
    (
        "split_cifar100",
        "Split CIFAR-100: 10 tasks of 10 classes, 3x32x32 inputs",
        partial(load_split_one, "CIFAR100", "split_cifar100"),
        partial(sizes_split_one, "CIFAR100", "split_cifar100"),
        _defaults(RESNET_DEFAULTS, classes_per_task=10, n_tasks=10),
    ),
):
    BENCHMARKS.add(
        _name,
        BenchmarkSpec(
            name=_name,
            description=_desc,
            load=_load,
            defaults=_defs,
            scenarios=("cl1", "cl2", "cl3"),
            task_sizes=_sizes,
        ),
    )
