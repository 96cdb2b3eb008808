"""Atomic file writes: every file hnet writes is either the old version or the new one.

A job can be killed at any instant (SLURM preemption, ``kill -9``, a full disk), and a study
tool must never leave half a metrics.json or checkpoint behind. Everything is written to a temp
file in the same directory, flushed to disk, then renamed over the target (``os.replace`` is
atomic on POSIX), so readers and resumed jobs only ever see whole files.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(
    path: str | Path, write: Callable[[IO[bytes]], None], keep: str | Path | None = None
) -> None:
    """Call ``write(f)`` on a temp file beside ``path``, fsync it, rename it over ``path``.
    The file gets the umask's usual mode (mkstemp's 0600 would hide results and data copies
    from the other users of a shared cluster directory). ``keep``: first rename the current
    ``path`` to ``keep`` (the previous checkpoint), so a damaged ``path`` has a fallback; a
    crash between the two renames leaves only ``keep``, which is whole.

    An ``OSError`` without a file name (a full disk mid-write) gets ``path`` as its name, so
    the message can say which file could not be written."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if keep is not None and path.exists():
            os.replace(path, keep)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))


def write_json(path: str | Path, obj: Any) -> None:
    """Indented JSON with a final newline (run directories are read by people too)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_torch(path: str | Path, payload: Any, keep: str | Path | None = None) -> None:
    """``torch.save`` of ``payload`` (checkpoints), atomically; ``keep`` as in
    :func:`write_atomic`."""
    import torch

    def write(f: IO[bytes]) -> None:
        try:
            torch.save(payload, f)
        except RuntimeError as e:  # torch's zip writer hides a full disk behind its own error
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise

    write_atomic(path, write, keep)


def aside_path(path: Path, tag: str) -> Path:
    """Where ``path`` goes instead of being deleted: ``<name>.<tag>-<UTC time>`` beside it
    (``-2``, ``-3``… when taken). Run directories use the tag ``old``, broken data ``broken``."""
    stem = f"{path.name}.{tag}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    aside, n = path.with_name(stem), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{stem}-{n}")
    return aside
