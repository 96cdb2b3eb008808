"""Reading CIFAR-10 / CIFAR-100 files into arrays: torchvision's layout, a safe unpickler and
the checks of what was read.

This module only turns bytes into validated arrays; where the files are found, downloaded or
repaired is :mod:`hnet.data.cifar_sources`, and the Split CIFAR benchmarks built from the arrays
are :mod:`hnet.data.cifar`.

Why we read the pickles ourselves instead of calling ``torchvision.datasets.CIFAR10(root)``:
torchvision checks every file's MD5 (rejecting anything but the official bytes, e.g. tiny test
files), ends in bare ``RuntimeError``/``KeyError``, and would re-read ~180 MB after our
validation and transpose to HWC, which we would transpose back. We use the same decoding
(``pickle.load(f, encoding="latin1")``, keys ``data`` and ``labels``/``fine_labels``, rows of
3072 = 3x32x32 bytes) with an unpickler restricted to numpy's array globals (a pickle in a
shared data dir must not run code), validate structure, sizes and label ranges, and turn every
problem into one :class:`DataError` naming the file.

Sample counts must be the real 50000 train / 10000 test (:data:`EXPECTED_ROWS`;
``data.check_counts: false`` or, in-process tests, ``EXPECTED_ROWS = None`` accept other counts
and still get every structural check).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import Tensor

from hnet.data.location import unreadable
from hnet.errors import DataError

IMAGE_SHAPE = (3, 32, 32)
ROW_BYTES = 3 * 32 * 32
# Rows per split of the real datasets (all train files together). Tests set this to None (or a
# job sets data.check_counts: false) to use tiny files; structure, row width, dtypes, label ranges
# and consistency are checked regardless.
EXPECTED_ROWS: dict[str, int] | None = {"train": 50000, "test": 10000}


@dataclass(frozen=True)
class CifarLayout:
    """One dataset as torchvision lays it out (the names of ``torchvision.datasets.CIFAR10``'s
    ``base_folder``, ``filename``, ``train_list``, ``test_list`` and ``meta``; a test checks
    they match) plus the per-channel statistics used for normalisation."""

    name: str  # torchvision dataset class
    label: str
    folder: str
    archive: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    meta_key: str
    n_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def files(self) -> tuple[str, ...]:
        return (*self.train, *self.test, self.meta)


# Mean/std of each dataset's training images per channel (pixels scaled to [0, 1]). The authors'
# public code (hypercl) normalised both datasets with ImageNet's (0.485, 0.456, 0.406) /
# (0.229, 0.224, 0.225): a different per-channel affine map of the inputs, which the first conv
# layer can largely absorb (all but its zero padding at the borders).
LAYOUTS = {
    "CIFAR10": CifarLayout(
        "CIFAR10",
        "CIFAR-10",
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "CIFAR100": CifarLayout(
        "CIFAR100",
        "CIFAR-100",
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ("train",),
        ("test",),
        "meta",
        "fine_label_names",
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
    ),
}

Arrays = tuple[Tensor, Tensor, Tensor, Tensor]  # x_train, y_train, x_test, y_test

# The only globals a CIFAR pickle needs (numpy arrays; _codecs for bytes in protocol-2 pickles
# written by Python 3). Both numpy.core (numpy 1, the official files) and numpy._core (numpy 2).
_ALLOWED_GLOBALS = {
    (module, name)
    for pkg in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{pkg}.multiarray", "_reconstruct"),
        (f"{pkg}.multiarray", "scalar"),
        (f"{pkg}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _CifarUnpickler(pickle.Unpickler):
    """torchvision's ``pickle.load(f, encoding="latin1")``, refusing any non-numpy global."""

    def __init__(self, source: IO[bytes], path: Path | str) -> None:
        super().__init__(source, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DataError(
                f"{self.path}: refers to {module}.{name}, which no CIFAR file does (they hold "
                f"only numpy arrays, lists and strings); not loaded, since it could run code."
            )
        return super().find_class(module, name)


def unpickle(source: IO[bytes], path: Path | str) -> Any:
    try:
        return _CifarUnpickler(source, path).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, MemoryError, UnicodeError) as e:  # fmt: skip
        raise DataError(
            f"{path}: not a readable CIFAR pickle, truncated or corrupt ({type(e).__name__}: {e})."
        ) from None


def read_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return unpickle(f, path)
    except PermissionError as e:
        raise unreadable(path, e) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}).") from None


def check_batch(entry: Any, path: Path | str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A decoded data file → (uint8 rows (n, 3072), int64 labels (n,)), or DataError."""
    if not isinstance(entry, dict) or "data" not in entry:
        found = sorted(map(repr, entry)) if isinstance(entry, dict) else type(entry).__name__
        raise DataError(f"{path}: expected a dict with a 'data' key, found {found}.")
    key = "labels" if "labels" in entry else "fine_labels"  # torchvision's rule
    if key not in entry:
        keys = sorted(map(repr, entry))
        raise DataError(f"{path}: no 'labels' or 'fine_labels' key (keys: {keys}).")
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data)
        raise DataError(f"{path}: 'data' must be a 2-D uint8 array, found {what}.")
    if data.shape[0] == 0 or data.shape[1] != ROW_BYTES:
        raise DataError(f"{path}: 'data' is {data.shape}, expected (n > 0, {ROW_BYTES}).")
    try:
        labels = np.asarray(entry[key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: {key!r} is not a list of integers.") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {key!r} has shape {labels.shape}.")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(
            f"{path}: labels outside 0..{n_classes - 1} ({labels.min()}..{labels.max()})."
        )
    return data, labels


def check_meta(entry: Any, path: Path | str, layout: CifarLayout) -> None:
    names = entry.get(layout.meta_key) if isinstance(entry, dict) else None
    if not isinstance(names, list) or len(names) != layout.n_classes:
        raise DataError(
            f"{path}: expected {layout.meta_key!r} listing {layout.n_classes} class names."
        )


Checked = tuple[np.ndarray, np.ndarray] | None  # (rows, labels) of a data file; None for meta


def check_file(layout: CifarLayout, name: str, entry: Any, path: Path | str) -> Checked:
    """A decoded file checked as what its name says: the meta file → None, a data file → its
    (rows, labels)."""
    if name == layout.meta:
        check_meta(entry, path, layout)
        return None
    return check_batch(entry, path, layout.n_classes)


def stack(
    layout: CifarLayout, files: dict[str, Checked], where: Path | str, check_counts: bool = True
) -> Arrays:
    """Validated files → (x_train, y_train, x_test, y_test) in torchvision's file order."""
    out = []
    for split in ("train", "test"):
        parts = [files[name] for name in getattr(layout, split)]
        x = np.concatenate([p[0] for p in parts if p is not None]).reshape(-1, *IMAGE_SHAPE)
        y = np.concatenate([p[1] for p in parts if p is not None])
        expected = EXPECTED_ROWS[split] if EXPECTED_ROWS is not None and check_counts else None
        if expected is not None and len(y) != expected:
            raise DataError(
                f"{where}: the {split} files hold {len(y)} images, expected {expected}."
            )
        out += [torch.from_numpy(x), torch.from_numpy(y)]
    return out[0], out[1], out[2], out[3]
