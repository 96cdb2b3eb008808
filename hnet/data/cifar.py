"""Split CIFAR benchmarks: find, validate and load CIFAR-10 / CIFAR-100 in torchvision's layout.

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

Why we read the pickles ourselves instead of calling ``torchvision.datasets.CIFAR10(root)``:
torchvision checks every file's MD5 (rejecting anything but the official bytes, e.g. tiny test
files), ends in bare ``RuntimeError``/``KeyError``, and would re-read ~180 MB after our
validation and transpose to HWC, which we would transpose back. We use the same decoding
(``pickle.load(f, encoding="latin1")``, keys ``data`` and ``labels``/``fine_labels``, rows of
3072 = 3x32x32 bytes) with an unpickler restricted to numpy's array globals (a pickle in a
shared data dir must not run code), validate structure, sizes and label ranges, and turn every
problem into one :class:`DataError` naming the file. torchvision itself is used to download.

Search order, per dataset, under the root (``data.dir``, else ``$HNET_DATA``, else
``~/.cache/hnet/data``, as for MNIST): (1) the extracted folder ``<root>/cifar-10-batches-py/``
or ``<root>/cifar-100-python/``; (2) the official archive ``<root>/cifar-10-python.tar.gz`` or
``<root>/cifar-100-python.tar.gz``, read and validated, then extracted into (1) with atomic
writes (best effort: a read-only root still works); (3) a download of the official archive
(torchvision's URL and MD5) when ``data.download`` is true, read like (2). A broken file in (1)
or a broken archive is moved aside (``<name>.broken-<time>``, ``hnet.data.location``), never
deleted, and only missing or broken files are extracted: valid ones are never rewritten.
Sample counts must be the real 50000 train / 10000 test
(:data:`EXPECTED_ROWS`; ``data.check_counts: false`` or, in-process tests, ``EXPECTED_ROWS =
None`` accept other counts and still get every structural check).

Two protocols of the paper are registered: the ResNet-32 one under the plain names and the
ZenkeNet one as ``split_cifar10_100_zenke`` (the same tasks; its own target, training length,
optimizer and inputs), so a study picks the protocol on its benchmark axis.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import pickle
import tarfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import Tensor

from hnet.data.augment import ImageAugment
from hnet.data.base import BENCHMARKS, Benchmark, BenchmarkSpec, TaskData
from hnet.data.location import (
    Unreadable,
    download_dir,
    download_failed,
    incomplete,
    move_aside,
    note,
    resolve_root,
    survey,
    unreadable,
)
from hnet.data.tasks import split_tasks
from hnet.errors import ConfigError, DataError
from hnet.files import write_bytes

IMAGE_SHAPE = (3, 32, 32)
ROW_BYTES = 3 * 32 * 32
# Rows per split of the real datasets (all train files together). Tests set this to None (or a
# job sets data.check_counts: false) to use tiny files; structure, row width, dtypes, label ranges
# and consistency are checked regardless.
EXPECTED_ROWS: dict[str, int] | None = {"train": 50000, "test": 10000}
CROP_PAD = 4


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

# --- reading and validating the pickles --------------------------------------------------------

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


def _unpickle(source: IO[bytes], path: Path | str) -> Any:
    try:
        return _CifarUnpickler(source, path).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, MemoryError, UnicodeError) as e:  # fmt: skip
        raise DataError(
            f"{path}: not a readable CIFAR pickle, truncated or corrupt ({type(e).__name__}: {e})."
        ) from None


def _read_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return _unpickle(f, path)
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


def _check_file(layout: CifarLayout, name: str, entry: Any, path: Path | str) -> Checked:
    if name == layout.meta:
        check_meta(entry, path, layout)
        return None
    return check_batch(entry, path, layout.n_classes)


def _stack(
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


# --- the three places: extracted folder, archive, download --------------------------------------


def _folder_state(
    directory: Path, layout: CifarLayout
) -> tuple[dict[str, Checked], list[str], dict[str, str]]:
    """The extracted folder, file by file: (valid files, missing names, broken name → why)."""
    present, missing = survey(directory, list(layout.files()))
    files: dict[str, Checked] = {}
    broken: dict[str, str] = {}
    for name in present:
        path = directory / name
        try:
            files[name] = _check_file(layout, name, _read_pickle(path), path)
        except Unreadable:
            raise
        except DataError as e:
            broken[name] = str(e)
    return files, missing, broken


def read_folder(directory: Path, layout: CifarLayout, check_counts: bool = True) -> Arrays | None:
    """The dataset in ``directory`` (torchvision's extracted folder); None if it holds none of
    the files, DataError if it is incomplete or anything is broken."""
    files, missing, broken = _folder_state(directory, layout)
    if not files and not broken:
        return None
    if broken:
        raise DataError(" ".join(broken.values()))
    if missing:
        raise incomplete(directory, missing)
    return _stack(layout, files, directory, check_counts)


def read_archive(
    archive: Path, layout: CifarLayout, check_counts: bool = True, broken: Iterable[str] = ()
) -> Arrays | None:
    """The dataset in the official ``.tar.gz`` next to its folder; None if there is none.

    Members are read in archive order (no backward seeks in the gzip stream); each one that
    validates and is missing from the extracted folder is written into it, so later jobs skip
    the archive. Files named in ``broken`` are moved aside first; valid files are never touched.
    """
    try:
        if not archive.exists():
            return None
    except PermissionError as e:
        raise unreadable(archive, e) from None
    wanted = {f"{layout.folder}/{name}": name for name in layout.files()}
    files: dict[str, Checked] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                source = tar.extractfile(member) if name and member.isfile() else None
                if name is None or source is None:
                    continue
                data, where = source.read(), f"{archive}:{member.name}"
                files[name] = _check_file(layout, name, _unpickle(io.BytesIO(data), where), where)
                _install(archive.parent / member.name, data, name in broken, archive)
    except PermissionError as e:
        raise unreadable(archive, e) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive}: corrupt or unreadable archive ({e}).") from None
    missing = [name for name in layout.files() if name not in files]
    if missing:
        raise DataError(f"{archive}: has no {', '.join(f'{layout.folder}/{m}' for m in missing)}.")
    return _stack(layout, files, archive, check_counts)


def _install(path: Path, data: bytes, broken: bool, source: Path) -> None:
    """Write a validated member into the extracted folder unless a valid copy is there; a
    broken copy is moved aside first. Best effort: the data is usable where the root is
    read-only."""
    with contextlib.suppress(OSError):
        if broken:
            aside = move_aside(path)
            note(f"{path} was broken; moved it aside to {aside.name}, replaced from {source}.")
        elif path.exists():
            return
        write_bytes(path, data)


def fetch_archive(layout: CifarLayout, directory: Path) -> Path:
    """Download the official archive into ``directory``, its MD5 checked against torchvision's
    list. Tests replace this function."""
    import torchvision.datasets as tvd  # lazy: importing torchvision costs ~1 s
    from torchvision.datasets.utils import download_url

    cls = getattr(tvd, layout.name)
    download_url(cls.url, str(directory), layout.archive, cls.tgz_md5)
    return directory / layout.archive


def download(
    layout: CifarLayout, root: Path, check_counts: bool = True, broken: Iterable[str] = ()
) -> Arrays | None:
    """Fetch the archive into a temp dir, put it in place of a broken one (moved aside, not
    deleted) and read it like a local archive: only missing or broken files are extracted."""
    with download_dir(root) as tmp:
        try:
            fetched = fetch_archive(layout, tmp)
        except Exception as e:  # network errors come in many types (URLError, SSL, timeouts)
            raise download_failed(root, e, layout.label) from None
        archive = root / layout.archive
        if archive.exists():  # we only download when the archive there is unusable
            note(f"{archive} is unusable; moved it aside to {move_aside(archive).name}.")
        fetched.rename(archive)
    note(f"{layout.label}: downloaded {archive}.")
    return read_archive(archive, layout, check_counts, broken)


def _locate(
    layout: CifarLayout, root: Path, allow_download: bool, check: bool
) -> tuple[Arrays | None, list[str], list[str]]:
    """(arrays or None, places looked in, problems found) for one dataset."""
    folder, archive = root / layout.folder, root / layout.archive
    looked, problems = [f"{folder}/ (torchvision layout)"], []
    files, missing, broken = _folder_state(folder, layout)
    if files and not missing and not broken:
        try:
            return _stack(layout, files, folder, check), looked, problems
        except DataError as e:
            problems.append(str(e))
    problems += broken.values()
    steps: list[tuple[str, Callable[[], Arrays | None]]] = [
        (f"{archive}", lambda: read_archive(archive, layout, check, broken)),
    ]
    if allow_download:
        steps.append((f"a download into {root}", lambda: download(layout, root, check, broken)))
    for where, step in steps:
        looked.append(where)
        try:
            found = step()
        except Unreadable:
            raise
        except DataError as e:
            problems.append(str(e))
            continue
        if found is not None:
            return found, looked, problems
    if files and missing:
        problems.append(str(incomplete(folder, missing)))
    return None, looked, problems


def load_cifar(names: Sequence[str], data_cfg: dict[str, Any]) -> list[Arrays]:
    """Locate, validate and load each of ``names`` ("CIFAR10", "CIFAR100").

    Returns per dataset ``(x_train, y_train, x_test, y_test)``: uint8 images (n, 3, 32, 32) and
    int64 labels. If any is missing, ONE DataError names every place looked in and the fix.
    """
    root = resolve_root(data_cfg).path
    allow_download = bool(data_cfg.get("download"))
    check = bool(data_cfg.get("check_counts", True))
    found, missing, looked, problems = [], [], [], []
    for name in names:
        arrays, where, issues = _locate(LAYOUTS[name], root, allow_download, check)
        found.append(arrays)
        if arrays is None:
            missing.append(LAYOUTS[name])
            looked += where
            problems += issues
    if missing:
        raise DataError(_not_found_message(missing, looked, problems, allow_download))
    return found


def _not_found_message(
    missing: list[CifarLayout], looked: list[str], problems: list[str], download: bool
) -> str:
    labels = " and ".join(layout.label for layout in missing)
    msg = f"{labels} not found or unusable. Looked in: {'; '.join(looked)}."
    if problems:
        msg += " Problems: " + " ".join(problems)
    holdings = " and ".join(
        f"{layout.folder}/ ({', '.join(layout.files())}) or {layout.archive}" for layout in missing
    )
    msg += (
        f" To fix: point --data-dir or the HNET_DATA environment variable at a directory "
        f"holding {holdings}"
    )
    if not download:
        msg += ", or run with --set data.download=true on a machine with internet access"
    return msg + "."


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
