"""Write tiny CIFAR-10 / CIFAR-100 files in the real format, so tests run the real loader.

The official files are Python 2 pickles (protocol 2) whose strings are Python 2 ``str``: loaded
with ``encoding="latin1"`` (torchvision) the keys are ``'data'``, ``'labels'``; with
``encoding="bytes"`` they are ``b'data'``, ``b'labels'``. Python 3's pickler would write bytes
as ``_codecs.encode`` calls (bytes under either encoding), so :class:`Py2Pickler` writes them
with the Python 2 string opcodes instead; numpy arrays pickle through it as in the real files.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

N_TRAIN = {"CIFAR10": 50, "CIFAR100": 200}  # CIFAR-100 needs >= 100 to hold every class
N_TEST = {"CIFAR10": 20, "CIFAR100": 100}
FOLDER = {"CIFAR10": "cifar-10-batches-py", "CIFAR100": "cifar-100-python"}
ARCHIVE = {"CIFAR10": "cifar-10-python.tar.gz", "CIFAR100": "cifar-100-python.tar.gz"}
N_CLASSES = {"CIFAR10": 10, "CIFAR100": 100}


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table is editable
    """Protocol-2 pickler that writes ``bytes`` as Python 2 ``str`` (SHORT_BINSTRING/BINSTRING)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj: Any) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tiny_split(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 rows (n, 3072) and labels with every class equally often (as far as n
    allows), shuffled."""
    labels = rng.permutation(np.arange(n) % N_CLASSES[name]).astype(np.int64)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), labels


def _batch(name: str, label: str, x: np.ndarray, y: np.ndarray) -> dict[bytes, Any]:
    files = [f"img_{i}.png".encode() for i in range(len(y))]
    out = {b"batch_label": label.encode(), b"data": x, b"filenames": files}
    if name == "CIFAR10":
        return {**out, b"labels": y.tolist()}
    return {**out, b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist()}


def cifar_file_bytes(name: str, seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """(file name → pickle bytes, arrays) of one tiny dataset; arrays has keys x_train, y_train,
    x_test, y_test with x as (n, 3072) rows."""
    rng = np.random.default_rng(seed)
    x_tr, y_tr = tiny_split(name, N_TRAIN[name], rng)
    x_te, y_te = tiny_split(name, N_TEST[name], rng)
    arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    classes = [f"class_{c}".encode() for c in range(N_CLASSES[name])]
    if name == "CIFAR10":
        objs = {
            f"data_batch_{i + 1}": _batch(name, f"training batch {i + 1} of 5", xs, ys)
            for i, (xs, ys) in enumerate(
                zip(np.array_split(x_tr, 5), np.array_split(y_tr, 5), strict=True)
            )
        }
        objs["test_batch"] = _batch(name, "testing batch 1 of 1", x_te, y_te)
        objs["batches.meta"] = {
            b"label_names": classes,
            b"num_cases_per_batch": len(y_tr) // 5,
            b"num_vis": 3072,
        }
    else:
        objs = {
            "train": _batch(name, "training batch 1 of 1", x_tr, y_tr),
            "test": _batch(name, "testing batch 1 of 1", x_te, y_te),
            "meta": {b"fine_label_names": classes, b"coarse_label_names": classes[:20]},
        }
    return {fname: py2_pickle(obj) for fname, obj in objs.items()}, arrays


def write_cifar(root: Path, name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny ``name`` ("CIFAR10"/"CIFAR100") in torchvision's layout under ``root``; the arrays."""
    files, arrays = cifar_file_bytes(name, seed)
    folder = Path(root) / FOLDER[name]
    folder.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    return arrays


def write_cifar_archive(root: Path, name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny ``name`` as the official ``.tar.gz`` (members under the folder name) in ``root``."""
    files, arrays = cifar_file_bytes(name, seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    with tarfile.open(Path(root) / ARCHIVE[name], "w:gz") as tar:
        for fname, data in [("readme.html", b"<html></html>"), *files.items()]:
            info = tarfile.TarInfo(f"{FOLDER[name]}/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return arrays
