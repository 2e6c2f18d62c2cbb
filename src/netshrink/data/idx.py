"""Reader for the IDX format of MNIST and Fashion-MNIST, gzipped or not, refusing bad files.

The format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
one big-endian uint32 per dimension, then the data. Anything that does not match is refused.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from netshrink.errors import DataError

_UBYTE = 0x08


def read_bytes(path: Path) -> bytes:
    """The decompressed content of an IDX file, '.gz' or plain."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise DataError(f"{path}: gzip stream is corrupt or truncated ({err})") from None
    return raw


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse(content: bytes, expect_ndim: int, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array with `expect_ndim` dimensions."""
    if len(content) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(content)} bytes)")
    if content[0] != 0 or content[1] != 0 or content[2] != _UBYTE:
        raise DataError(
            f"{source}: wrong magic number {content[:4].hex()}; an IDX file of unsigned bytes "
            f"starts with 0000 08 0{expect_ndim}"
        )
    ndim = content[3]
    if ndim != expect_ndim:
        raise DataError(f"{source}: has {ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{source}: truncated inside its header")
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise DataError(f"{source}: has an empty dimension {dims}")
    expected = int(np.prod(dims))
    body = len(content) - header
    if body < expected:
        raise DataError(f"{source}: truncated: {body} data bytes for shape {dims} ({expected})")
    if body > expected:
        raise DataError(f"{source}: {body - expected} trailing bytes after shape {dims}")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def check_pair(images: np.ndarray, labels: np.ndarray, num_classes: int, source: str) -> None:
    """Refuse an image/label pair whose counts differ or whose labels are out of range."""
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{source}: {images.shape[0]} images but {labels.shape[0]} labels; the files do not "
            "belong together"
        )
    top = int(labels.max())
    if top >= num_classes:
        raise DataError(f"{source}: label {top} out of range 0..{num_classes - 1}")
