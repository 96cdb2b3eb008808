"""Read, validate and write idx files (the MNIST / Fashion-MNIST file format).

Why our own reader when torchvision has one: torchvision's parser ends in bare ``assert``s and
``RuntimeError("Dataset not found")``, and it only accepts files whose archive MD5 it knows.
Debian's ``dataset-fashion-mnist`` package recompressed the archives (different MD5, same
content), so we skip archive checksums and instead validate what actually matters, the decoded
content: magic number, dimensions, payload length == product of the header's dims, and sample
counts. Every problem becomes a :class:`~hnet.errors.DataError` that names the file.

The writer exists so tests can build tiny files in the real format and exercise the real
loading path (torchvision included) without the 30 MB datasets.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hnet.data.location import unreadable
from hnet.errors import DataError
from hnet.files import write_bytes

LABELS_MAGIC = 0x0801  # unsigned byte, 1 dim
IMAGES_MAGIC = 0x0803  # unsigned byte, 3 dims
_MAGIC_KIND = {LABELS_MAGIC: "labels", IMAGES_MAGIC: "images"}


@dataclass(frozen=True)
class IdxHeader:
    """What the header says: the magic number and the size of each dimension."""

    magic: int
    dims: tuple[int, ...]

    @property
    def kind(self) -> str:
        return _MAGIC_KIND[self.magic]

    @property
    def size(self) -> int:
        """Number of payload bytes the header promises (uint8 payload)."""
        return int(np.prod(self.dims, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Length of the header itself: magic plus one 4-byte int per dimension."""
        return 4 * (1 + len(self.dims))


def parse_header(head: bytes, path: Path | str) -> IdxHeader:
    """Decode and check an idx header (only the uint8 images/labels variants are valid here)."""
    if len(head) < 4:
        raise DataError(f"{path}: too short to be an idx file ({len(head)} bytes).")
    (magic,) = struct.unpack(">I", head[:4])
    if magic not in _MAGIC_KIND:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08x} (expected 0x{LABELS_MAGIC:08x} for labels "
            f"or 0x{IMAGES_MAGIC:08x} for images); not an uncompressed MNIST-style idx file."
        )
    ndim = magic & 0xFF
    if len(head) < 4 * (1 + ndim):
        raise DataError(f"{path}: truncated header ({len(head)} bytes for {ndim} dims).")
    dims = struct.unpack(f">{ndim}I", head[4 : 4 * (1 + ndim)])
    return IdxHeader(magic, tuple(int(d) for d in dims))


def check_header(
    header: IdxHeader,
    path: Path | str,
    kind: str | None = None,
    count: int | None = None,
    payload: int | None = None,
) -> None:
    """Check the header against what the caller expects; ``payload`` is the bytes after it."""
    if kind is not None and header.kind != kind:
        raise DataError(f"{path}: holds {header.kind}, expected {kind}.")
    if 0 in header.dims:
        raise DataError(f"{path}: header has an empty dimension {header.dims}.")
    if payload is not None and payload != header.size:
        what = "truncated" if payload < header.size else "has trailing bytes"
        raise DataError(
            f"{path}: {what}: header {header.dims} promises {header.size} bytes of data, "
            f"found {payload}."
        )
    if count is not None and header.dims[0] != count:
        raise DataError(f"{path}: holds {header.dims[0]} samples, expected {count}.")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except PermissionError as e:
        raise unreadable(path, e) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip archive ({e}).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}).") from None


def read_idx_bytes(
    path: Path | str, kind: str | None = None, count: int | None = None
) -> tuple[IdxHeader, bytes]:
    """Read a whole idx file (``.gz`` or plain), validate it and return header and raw bytes."""
    path = Path(path)
    data = _read_bytes(path)
    header = parse_header(data[:16], path)
    check_header(header, path, kind, count, payload=len(data) - header.nbytes)
    return header, data


def read_idx(path: Path | str, kind: str | None = None, count: int | None = None) -> np.ndarray:
    """Read and validate an idx file into a uint8 array of the header's shape."""
    header, data = read_idx_bytes(path, kind, count)
    return np.frombuffer(data, dtype=np.uint8, offset=header.nbytes).reshape(header.dims)


def check_idx_file(
    path: Path | str, kind: str | None = None, count: int | None = None
) -> IdxHeader:
    """Validate an *uncompressed* idx file from its header and size alone (no full read)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(16)
        size = path.stat().st_size
    except PermissionError as e:
        raise unreadable(path, e) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}).") from None
    header = parse_header(head, path)
    check_header(header, path, kind, count, payload=size - header.nbytes)
    return header


def encode_idx(array: np.ndarray) -> bytes:
    """A uint8 array with 1 (labels) or 3 (images) dims → idx file bytes."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"idx writer takes uint8 arrays with 1 or 3 dims, got {array.dtype}")
    magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write ``array`` as an idx file, gzip-compressed when ``path`` ends with ``.gz``."""
    data = encode_idx(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    write_bytes(path, data)
