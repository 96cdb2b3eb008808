"""Where CIFAR comes from: the extracted folder, the official archive or a download, and the
repairs done on the way.

Search order, per dataset, under the root (``data.dir``, else ``$HNET_DATA``, else
``~/.cache/hnet/data``, as for MNIST): (1) the extracted folder ``<root>/cifar-10-batches-py/``
or ``<root>/cifar-100-python/``; (2) the official archive ``<root>/cifar-10-python.tar.gz`` or
``<root>/cifar-100-python.tar.gz``, read and validated, then extracted into (1) with atomic
writes (best effort: a read-only root still works); (3) a download of the official archive
(torchvision's URL and MD5) when ``data.download`` is true, read like (2). A broken file in (1)
or a broken archive is moved aside (``<name>.broken-<time>``, ``hnet.data.location``), never
deleted, and only missing or broken files are extracted: valid ones are never rewritten.
torchvision itself is used only to download.

Every file is read and checked by :mod:`hnet.data.cifar_format`; :func:`load_cifar` is what the
benchmarks (:mod:`hnet.data.cifar`) call, and it ends in one :class:`DataError` naming every
place looked in and the fix.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hnet.data.cifar_format import (
    LAYOUTS,
    Arrays,
    Checked,
    CifarLayout,
    check_file,
    read_pickle,
    stack,
    unpickle,
)
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
from hnet.errors import DataError
from hnet.files import write_bytes


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
            files[name] = check_file(layout, name, read_pickle(path), path)
        except Unreadable:
            raise
        except DataError as e:
            broken[name] = str(e)
    return files, missing, broken


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
                files[name] = check_file(layout, name, unpickle(io.BytesIO(data), where), where)
                _install(archive.parent / member.name, data, name in broken, archive)
    except PermissionError as e:
        raise unreadable(archive, e) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive}: corrupt or unreadable archive ({e}).") from None
    missing = [name for name in layout.files() if name not in files]
    if missing:
        raise DataError(f"{archive}: has no {', '.join(f'{layout.folder}/{m}' for m in missing)}.")
    return stack(layout, files, archive, check_counts)


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
            return stack(layout, files, folder, check), looked, problems
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
