"""Find MNIST / Fashion-MNIST on disk and load them through torchvision's dataset classes.

Why this is more than ``torchvision.datasets.MNIST(root)``: jobs run offline on cluster nodes,
and the files may sit in several places (a torchvision cache, a folder of ``.gz`` files, Debian's
``dataset-fashion-mnist`` package). We look in each, validate the decoded idx content ourselves
(``hnet.data.idx``; no archive MD5, since Debian's recompressed archives differ from
torchvision's checksums), decompress into torchvision's layout ``<root>/<Name>/raw/`` with atomic
writes (parallel jobs may do this at the same time) and only then let torchvision read them with
``download=False``. Anything missing or corrupt ends in ONE :class:`DataError` listing every
place looked in and how to fix it, never in a torchvision traceback.

Search order: (1) decompressed files in ``<root>/<Name>/raw/``; (2) ``.gz`` files in that raw
dir, in ``<root>`` or in ``<root>/<Name>/``; (3) the system dirs in :data:`SYSTEM_DIRS`;
(4) a torchvision download when ``data.download`` is true. The root is ``data.dir``, else
``$HNET_DATA``, else ``~/.cache/hnet/data``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor

from hnet.data.idx import IdxHeader, check_idx_file, read_idx_bytes
from hnet.errors import DataError
from hnet.files import write_bytes

DEFAULT_ROOT = Path("~/.cache/hnet/data")
LABELS = {"MNIST": "MNIST", "FashionMNIST": "Fashion-MNIST"}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Samples per split of the real datasets. Tests set this to None to use tiny files, and
# ``data.check_counts: false`` turns the check off for a job (tiny files in a subprocess); even
# then every file's header is checked against its payload and images against labels.
EXPECTED_COUNTS: dict[str, int] | None = {"train": 60000, "test": 10000}
# Training images per class of the real datasets: what ``train.epochs`` counts with, before any
# file is read (the job checks the loaded data against it).
TRAIN_PER_CLASS = {
    "MNIST": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "FashionMNIST": (6000,) * 10,
}
# Read-only places where a distribution installs the ``.gz`` files (tests point these elsewhere).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "MNIST": (),
    "FashionMNIST": (Path("/usr/share/datasets/fashion-mnist"),),
}
APT_PACKAGES = {"FashionMNIST": "dataset-fashion-mnist"}
IMAGE_SHAPE = (28, 28)


def data_root(data_cfg: dict[str, Any]) -> Path:
    """``data.dir`` if set, else ``$HNET_DATA``, else ``~/.cache/hnet/data``."""
    root = data_cfg.get("dir") or os.environ.get("HNET_DATA") or DEFAULT_ROOT
    return Path(root).expanduser()


Counts = dict[str, int] | None  # expected samples per split, None = not checked


def _count(counts: Counts, split: str) -> int | None:
    return None if counts is None else counts[split]


def _check_pair(img: IdxHeader, lab: IdxHeader, img_path: Path, lab_path: Path) -> None:
    if img.dims[1:] != IMAGE_SHAPE:
        raise DataError(f"{img_path}: images are {img.dims[1:]}, expected {IMAGE_SHAPE}.")
    if img.dims[0] != lab.dims[0]:
        raise DataError(
            f"{img_path} holds {img.dims[0]} images but {lab_path} holds {lab.dims[0]} labels."
        )


def _files(directory: Path, suffix: str = "") -> list[Path]:
    return [directory / (name + suffix) for pair in SPLITS.values() for name in pair]


def _check_raw(raw: Path, counts: Counts) -> bool:
    """True if ``raw`` holds four valid decompressed files; DataError if present but broken."""
    files = _files(raw)
    present = [f.exists() for f in files]
    if not any(present):
        return False
    if not all(present):
        missing = ", ".join(f.name for f, ok in zip(files, present, strict=True) if not ok)
        raise DataError(f"{raw}: incomplete, missing {missing}.")
    for split, (img_name, lab_name) in SPLITS.items():
        img = check_idx_file(raw / img_name, "images", _count(counts, split))
        lab = check_idx_file(raw / lab_name, "labels", _count(counts, split))
        _check_pair(img, lab, raw / img_name, raw / lab_name)
    return True


def _install_gz(src: Path, raw: Path, counts: Counts) -> bool:
    """Validate the four ``.gz`` files in ``src``, then decompress them into ``raw``."""
    if not all(f.exists() for f in _files(src, ".gz")):
        return False
    decoded: dict[str, bytes] = {}
    for split, (img_name, lab_name) in SPLITS.items():
        img, img_bytes = read_idx_bytes(src / f"{img_name}.gz", "images", _count(counts, split))
        lab, lab_bytes = read_idx_bytes(src / f"{lab_name}.gz", "labels", _count(counts, split))
        _check_pair(img, lab, src / f"{img_name}.gz", src / f"{lab_name}.gz")
        decoded[img_name], decoded[lab_name] = img_bytes, lab_bytes
    try:
        for name, data in decoded.items():
            write_bytes(raw / name, data)
    except OSError as e:
        raise DataError(
            f"Found valid .gz idx files in {src} but cannot write the decompressed copies into "
            f"{raw} ({e}). Point --data-dir or HNET_DATA at a writable directory."
        ) from None
    return True


def _torchvision_load(name: str, root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Read validated files in torchvision's layout with its dataset class (no download)."""
    import torchvision.datasets as tvd  # lazy: importing torchvision costs ~1 s

    cls = getattr(tvd, name)
    try:
        train, test = (cls(str(root), train=flag, download=False) for flag in (True, False))
    except (RuntimeError, AssertionError, ValueError, TypeError, OSError) as e:
        raise DataError(
            f"torchvision could not read {LABELS[name]} from {root / name / 'raw'} ({e!r}). "
            "Delete that directory so it is rebuilt from the .gz files, or re-download."
        ) from None
    out = (train.data, train.targets.long(), test.data, test.targets.long())
    for split, labels in (("train", out[1]), ("test", out[3])):
        if labels.numel() and (labels.min() < 0 or labels.max() > 9):
            file = root / name / "raw" / SPLITS[split][1]
            raise DataError(f"{file}: labels outside 0..9 (max {int(labels.max())}).")
    return out


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    raw = root / name / "raw"
    for f in _files(raw):  # torchvision skips the download if the (corrupt) files exist
        f.unlink(missing_ok=True)
    try:
        getattr(tvd, name)(str(root), train=True, download=True)
    except Exception as e:  # network errors come in many types (URLError, SSL, timeouts, ...)
        msg = " ".join(str(e).split())
        raise DataError(f"Download into {root} failed: {msg[:300]}") from None


def load_mnist_like(name: str, data_cfg: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Locate, validate and load ``name`` ("MNIST" or "FashionMNIST").

    Returns ``(x_train, y_train, x_test, y_test)``: uint8 images (n, 28, 28), int64 labels.
    ``data.check_counts: false`` accepts files with other sample counts (tiny test files).
    """
    if name not in LABELS:
        raise ValueError(f"unknown MNIST-like dataset {name!r}")
    counts = EXPECTED_COUNTS if data_cfg.get("check_counts", True) else None
    root = data_root(data_cfg)
    raw = root / name / "raw"
    looked: list[str] = []
    problems: list[str] = []

    def attempt(step: Any, where: str) -> bool:
        looked.append(where)
        try:
            return bool(step())
        except DataError as e:
            problems.append(str(e))
            return False

    found = attempt(lambda: _check_raw(raw, counts), f"{raw} (decompressed, torchvision layout)")
    gz_dirs = [raw, root, root / name, *SYSTEM_DIRS.get(name, ())]
    for src in dict.fromkeys(gz_dirs):
        if found:
            break
        found = attempt(lambda src=src: _install_gz(src, raw, counts), f"{src}/*.gz")
    if not found and data_cfg.get("download"):
        looked.append(f"download into {root}")
        try:
            _download(name, root)
            found = _check_raw(raw, counts)
        except DataError as e:
            problems.append(str(e))
    if found:
        return _torchvision_load(name, root)
    raise DataError(_not_found_message(name, looked, problems, bool(data_cfg.get("download"))))


def _not_found_message(name: str, looked: list[str], problems: list[str], download: bool) -> str:
    files = ", ".join(p.name for p in _files(Path()))
    msg = f"{LABELS[name]} not found or unusable. Looked in: {'; '.join(looked)}."
    if problems:
        msg += " Problems: " + " ".join(problems)
    msg += (
        f" To fix: point --data-dir or the HNET_DATA environment variable at a directory "
        f"holding the four idx files ({files}; plain in {name}/raw/ or as .gz)"
    )
    if not download:
        msg += ", or run with --set data.download=true on a machine with internet access"
    if name in APT_PACKAGES:
        msg += f", or install the Debian package: apt-get install {APT_PACKAGES[name]}"
    return msg + "."
