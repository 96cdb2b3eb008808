"""Where datasets live: the data root, whether the user chose it, and safe changes inside it.

Three rules shared by every file-based benchmark (MNIST family, CIFAR):

* **An explicit data directory is what the user asked for.** The root is ``data.dir``
  (``--data-dir``), else ``$HNET_DATA``, else ``~/.cache/hnet/data``; the first two are
  explicit. When what an explicit root holds is broken, the job stops with one
  :class:`DataError` naming the broken files and why; hnet never silently reads another copy
  (a system package's) instead, it only offers it in the message. An explicit root that holds
  nothing at all may still be filled from elsewhere, and a note says from where.
* **Validated files are never touched.** A broken file is moved aside to
  ``<name>.broken-<UTC time>`` (never deleted) and only it is fetched or rebuilt again.
* **An unreadable directory is one paragraph**, naming the path and the fix, never a
  ``PermissionError`` traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hnet.errors import DataError
from hnet.files import aside_path

DEFAULT_ROOT = Path("~/.cache/hnet/data")


class Unreadable(DataError):
    """A data directory or file the user cannot read: a permission problem, not a broken file
    (it is never moved aside, and no other copy is used instead)."""


@dataclass(frozen=True)
class DataRoot:
    """The data root and where it came from: ``--data-dir`` / ``data.dir``, ``HNET_DATA``, or
    ``None`` for the default."""

    path: Path
    source: str | None

    @property
    def explicit(self) -> bool:
        return self.source is not None

    def how_to_drop(self) -> str:
        """What to do to stop using this root (for messages)."""
        if self.source == "HNET_DATA":
            return "unset HNET_DATA"
        return "drop --data-dir (data.dir)"


def resolve_root(data_cfg: dict[str, Any]) -> DataRoot:
    """``data.dir`` if set, else ``$HNET_DATA``, else ``~/.cache/hnet/data``."""
    if data_cfg.get("dir"):
        return DataRoot(Path(data_cfg["dir"]).expanduser(), "--data-dir (data.dir)")
    if os.environ.get("HNET_DATA"):
        return DataRoot(Path(os.environ["HNET_DATA"]).expanduser(), "HNET_DATA")
    return DataRoot(DEFAULT_ROOT.expanduser(), None)


def _blocking_dir(path: Path) -> Path:
    """The outermost directory on the way to ``path`` that cannot be entered or listed."""
    for parent in [*reversed(path.parents), path]:
        try:
            if parent.is_dir() and not os.access(parent, os.R_OK | os.X_OK):
                return parent
        except OSError:
            return parent.parent
    return path


def unreadable(path: Path, error: OSError) -> Unreadable:
    """The one-paragraph error for a permission problem at (or above) ``path``."""
    where = _blocking_dir(path)
    reason = error.strerror or type(error).__name__
    try:
        what = "data file" if where.is_file() else "data directory"
    except OSError:
        what = "data directory"
    seeking = "" if where == path else f", while looking for {path}"
    return Unreadable(
        f"Cannot read the {what} {where} ({reason}{seeking}). "
        f"To fix: give your user read and search permission on it (e.g. chmod u+rx {where}, "
        f"or ask its owner), or point --data-dir or HNET_DATA at a directory you can read."
    )


def survey(directory: Path, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(present, missing)`` among ``names`` in ``directory``; :class:`Unreadable` if the
    directory cannot be searched. The one completeness check of every data folder."""
    present, missing = [], []
    for name in names:
        try:
            exists = (directory / name).exists()
        except PermissionError as e:
            raise unreadable(directory, e) from None
        (present if exists else missing).append(name)
    return present, missing


class Incomplete(DataError):
    """A data folder holding some of a dataset's files but not all: nothing in it is broken."""


def incomplete(directory: Path, missing: Iterable[str]) -> Incomplete:
    return Incomplete(f"{directory}: incomplete, missing {', '.join(missing)}.")


def move_aside(path: Path) -> Path:
    """Rename a broken file to ``<name>.broken-<UTC time>`` beside it; never delete it."""
    aside = aside_path(path, "broken")
    try:
        path.rename(aside)
    except FileNotFoundError:  # a parallel job moved it already
        return aside
    except OSError as e:
        raise DataError(
            f"{path} is broken and must be replaced, but cannot be moved aside to {aside} ({e}). "
            "Move or remove it yourself, or point --data-dir or HNET_DATA at a writable "
            "directory."
        ) from None
    return aside


def note(message: str) -> None:
    """Tell the user which copy of a dataset is used, or what was moved aside (stderr)."""
    print(f"hnet: {message}", file=sys.stderr, flush=True)


@contextmanager
def download_dir(parent: Path) -> Iterator[Path]:
    """A temp dir under ``parent`` that downloads land in, so a fetched file is validated
    before it replaces anything; removed afterwards (only our own temp copies)."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=parent))
    except OSError as e:
        raise DataError(
            f"Cannot download into {parent} ({e}). Point --data-dir or HNET_DATA at a writable "
            "directory."
        ) from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_failed(root: Path, error: Exception, what: str = "") -> DataError:
    """One line for a failed download; network errors come in many types and shapes."""
    msg = " ".join(str(error).split())[:300].rstrip(".")
    return DataError(f"Download{f' of {what}' if what else ''} into {root} failed: {msg}.")
