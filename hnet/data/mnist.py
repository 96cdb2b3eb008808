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
(4) a download of the missing files when ``data.download`` is true. The root is ``data.dir``,
else ``$HNET_DATA``, else ``~/.cache/hnet/data`` (``hnet.data.location``). Broken files in an
explicit root (``data.dir`` or ``$HNET_DATA``) are never silently bypassed for (3): unless (2)
or (4) can replace them, the load stops with a message naming them. A replaced file is moved
aside (``<name>.broken-<time>``), never deleted; files that pass validation are never touched.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from torch import Tensor

from hnet.data.idx import IdxHeader, check_idx_file, read_idx_bytes
from hnet.data.location import (
    DataRoot,
    Incomplete,
    Unreadable,
    download_dir,
    download_failed,
    incomplete,
    move_aside,
    note,
    resolve_root,
    survey,
)
from hnet.errors import DataError
from hnet.files import write_bytes

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


Counts = dict[str, int] | None  # expected samples per split, None = not checked
# file name → (split, kind) of the four idx files
KINDS = {
    name: (split, kind)
    for split, pair in SPLITS.items()
    for name, kind in zip(pair, ("images", "labels"), strict=True)
}


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
    return [directory / (name + suffix) for name in KINDS]


def _raw_state(raw: Path, counts: Counts) -> tuple[list[str], dict[str, str]]:
    """The decompressed files in ``raw``: (missing names, broken name → why). Header and size
    only, no full read; :class:`Unreadable` if ``raw`` cannot be read."""
    present, missing = survey(raw, list(KINDS))
    broken: dict[str, str] = {}
    headers: dict[str, IdxHeader] = {}
    for name in present:
        split, kind = KINDS[name]
        try:
            headers[name] = check_idx_file(raw / name, kind, _count(counts, split))
        except Unreadable:
            raise
        except DataError as e:
            broken[name] = str(e)
    for img, lab in SPLITS.values():
        if img in headers and lab in headers:
            try:
                _check_pair(headers[img], headers[lab], raw / img, raw / lab)
            except DataError as e:
                broken[img] = broken[lab] = str(e)
    return missing, broken


def _read_gz(src: Path, counts: Counts) -> dict[str, bytes] | None:
    """The decoded content of the four ``.gz`` files in ``src``; None if it holds none of them.
    DataError naming every broken file, or the missing ones."""
    present, missing = survey(src, [name + ".gz" for name in KINDS])
    if not present:
        return None
    if missing:
        raise incomplete(src, missing)
    decoded: dict[str, bytes] = {}
    headers: dict[str, IdxHeader] = {}
    problems: list[str] = []
    for name, (split, kind) in KINDS.items():
        try:
            headers[name], decoded[name] = read_idx_bytes(
                src / f"{name}.gz", kind, _count(counts, split)
            )
        except Unreadable:
            raise
        except DataError as e:
            problems.append(str(e))
    if problems:
        raise DataError(" ".join(problems))
    for img, lab in SPLITS.values():
        _check_pair(headers[img], headers[lab], src / f"{img}.gz", src / f"{lab}.gz")
    return decoded


def _install(
    raw: Path, broken: dict[str, str], decoded: dict[str, bytes], source: str, counts: Counts
) -> None:
    """Move the broken files aside (never delete them), then write ``decoded`` into ``raw``;
    files that passed validation are not in ``decoded`` and stay untouched."""
    _, still = _raw_state(raw, counts) if broken else ([], {})
    for name, why in broken.items():
        if name not in still:  # a parallel job replaced it meanwhile: now valid, keep it
            decoded.pop(name, None)
            continue
        aside = move_aside(raw / name)
        note(f"{why} Moved it aside to {aside.name}; replacing it from {source}.")
    try:
        for name, data in decoded.items():
            write_bytes(raw / name, data)
    except OSError as e:
        raise DataError(
            f"Found valid idx files ({source}) but cannot write the decompressed copies into "
            f"{raw} ({e}). Point --data-dir or HNET_DATA at a writable directory."
        ) from None


def fetch_gz(name: str, filename: str, directory: Path) -> Path:
    """Download one of torchvision's ``.gz`` files of ``name`` into ``directory``, its MD5
    checked against torchvision's list, trying each mirror. Tests replace this function."""
    import torchvision.datasets as tvd  # lazy: importing torchvision costs ~1 s
    from torchvision.datasets.utils import download_url

    cls = getattr(tvd, name)
    md5 = dict(cls.resources)[filename]
    error: Exception = RuntimeError(f"no mirror for {filename}")
    for mirror in cls.mirrors:
        try:
            download_url(f"{mirror}{filename}", str(directory), filename, md5)
            return directory / filename
        except Exception as e:  # network errors come in many types (URLError, SSL, timeouts)
            error = e
    raise error


def _download(name: str, root: Path, need: list[str], counts: Counts) -> dict[str, bytes]:
    """Fetch only the files in ``need`` into a temp dir beside ``raw``; their decoded content."""
    decoded: dict[str, bytes] = {}
    with download_dir(root / name) as tmp:
        for file in need:
            try:
                path = fetch_gz(name, f"{file}.gz", tmp)
            except Exception as e:  # network errors come in many types
                raise download_failed(root, e) from None
            split, kind = KINDS[file]
            decoded[file] = read_idx_bytes(path, kind, _count(counts, split))[1]
    return decoded


def _torchvision_load(name: str, root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Read validated files in torchvision's layout with its dataset class (no download)."""
    import torchvision.datasets as tvd  # lazy: importing torchvision costs ~1 s

    cls = getattr(tvd, name)
    try:
        train, test = (cls(str(root), train=flag, download=False) for flag in (True, False))
    except (RuntimeError, AssertionError, ValueError, TypeError, OSError) as e:
        raise DataError(
            f"torchvision could not read {LABELS[name]} from {root / name / 'raw'} ({e!r}). "
            "Move that directory aside so it is rebuilt from the .gz files, or re-download."
        ) from None
    out = (train.data, train.targets.long(), test.data, test.targets.long())
    for split, labels in (("train", out[1]), ("test", out[3])):
        if labels.numel() and (labels.min() < 0 or labels.max() > 9):
            file = root / name / "raw" / SPLITS[split][1]
            raise DataError(f"{file}: labels outside 0..9 (max {int(labels.max())}).")
    return out


def load_mnist_like(name: str, data_cfg: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Locate, validate and load ``name`` ("MNIST" or "FashionMNIST").

    Returns ``(x_train, y_train, x_test, y_test)``: uint8 images (n, 28, 28), int64 labels.
    ``data.check_counts: false`` accepts files with other sample counts (tiny test files).
    Broken files in an explicit data dir stop the load (:func:`_broken_message`) unless a valid
    source inside it or a download (``data.download``) can replace them; they are moved aside,
    never deleted, and only they are replaced.
    """
    if name not in LABELS:
        raise ValueError(f"unknown MNIST-like dataset {name!r}")
    counts = EXPECTED_COUNTS if data_cfg.get("check_counts", True) else None
    download = bool(data_cfg.get("download"))
    root = resolve_root(data_cfg)
    raw = root.path / name / "raw"
    missing, broken = _raw_state(raw, counts)
    if not missing and not broken:
        return _torchvision_load(name, root.path)
    need = [*broken, *missing]
    looked = [f"{raw} (decompressed, torchvision layout)"]
    problems = list(dict.fromkeys(broken.values()))  # broken files inside the root
    incomplete_sets: list[str] = []  # .gz sets with files missing: not broken, but unusable
    local = None
    for src in dict.fromkeys([raw, root.path, root.path / name]):
        looked.append(f"{src}/*.gz")
        try:
            decoded = _read_gz(src, counts)
        except Unreadable:
            raise
        except Incomplete as e:
            incomplete_sets.append(str(e))
            continue
        except DataError as e:
            problems.append(str(e))
            continue
        if decoded is not None and local is None:
            local = src, decoded
    if local is not None:  # the user's own valid copy, in the root
        decoded = {n: local[1][n] for n in need}
        _install(raw, broken, decoded, f"the .gz files in {local[0]}", counts)
        return _checked_load(name, root.path, counts)
    root_problems = bool(problems)  # broken files inside the root
    if root_problems and root.explicit and not download:
        raise DataError(_broken_message(name, root, problems, download))
    if not (root_problems and root.explicit):  # a system copy only where the root has no say
        for src in SYSTEM_DIRS.get(name, ()):
            looked.append(f"{src}/*.gz")
            try:
                decoded = _read_gz(src, counts)
            except DataError as e:
                problems.append(str(e))
                continue
            if decoded is not None:
                why = "has broken files" if broken else "holds no complete copy"
                note(
                    f"{LABELS[name]}: {root.path} {why}; using the copy in {src}, "
                    f"decompressed into {raw}."
                )
                decoded = {n: decoded[n] for n in need}
                _install(raw, broken, decoded, f"the copy in {src}", counts)
                return _checked_load(name, root.path, counts)
    if download:
        looked.append(f"download into {root.path}")
        try:
            decoded = _download(name, root.path, need, counts)
        except Unreadable:
            raise
        except DataError as e:
            failed = str(e)
        else:
            note(f"{LABELS[name]}: downloaded {', '.join(need)} into {raw}.")
            _install(raw, broken, decoded, "the download", counts)
            return _checked_load(name, root.path, counts)
        if root_problems and root.explicit:
            msg = _broken_message(name, root, problems, download)
            raise DataError(f"{msg} (The download that would replace them failed: {failed})")
        problems.append(failed)
    if missing and len(missing) < len(KINDS):
        problems.append(str(incomplete(raw, missing)))
    raise DataError(_not_found_message(name, looked, problems + incomplete_sets, download))


def _checked_load(name: str, root: Path, counts: Counts) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Check the decompressed files once more (a replaced file must match the kept ones)."""
    raw = root / name / "raw"
    missing, broken = _raw_state(raw, counts)
    if missing or broken:
        why = " ".join(dict.fromkeys(broken.values())) or str(incomplete(raw, missing))
        raise DataError(f"{LABELS[name]} in {raw} is still unusable after the repair: {why}")
    return _torchvision_load(name, root)


def _system_copy(name: str) -> Path | None:
    """The first system dir holding all four ``.gz`` files (for messages; not read)."""
    for src in SYSTEM_DIRS.get(name, ()):
        with contextlib.suppress(OSError):
            if all(p.exists() for p in _files(src, ".gz")):
                return src
    return None


def _broken_message(name: str, root: DataRoot, problems: list[str], download: bool) -> str:
    """Broken files in an explicit data dir: what is broken and the ways out."""
    msg = (
        f"{LABELS[name]} in the data directory you chose ({root.source}: {root.path}) is "
        f"broken: {' '.join(problems)} hnet does not silently read another copy when you name "
        "a data directory. To fix: move the broken files out of the way or remove them (hnet "
        "then fills the gap from valid .gz files in that directory, a system copy or a "
        "download, and says which)"
    )
    if not download:
        msg += (
            ", or run with --set data.download=true to fetch only the broken files again (they "
            "are moved aside, never deleted)"
        )
    system = _system_copy(name)
    if system is not None:
        msg += f", or {root.how_to_drop()} to use the copy found at {system}"
    return msg + "."


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
