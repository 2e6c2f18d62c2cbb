"""Reader for the IDX format of MNIST and Fashion-MNIST, gzipped or not, refusing bad files.

The format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
one big-endian uint32 per dimension, then the data. Anything that does not match is refused.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from netshrink.errors import DataError

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream
_CHUNK = 1 << 20


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The decompressed content of an IDX file, '.gz' or plain, refused as soon as it grows
    past `limit` bytes (a gzip bomb is never decompressed whole: it is read in chunks)."""
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == _GZIP_MAGIC
            handle.seek(0)
            if gzipped:
                return _gunzip(handle, limit, path)
            raw = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from None
    if limit is not None and len(raw) > limit:
        raise DataError(f"{path}: larger than the official file ({limit:,d} bytes)")
    return raw


def _gunzip(handle, limit: int | None, path) -> bytes:
    """Stream-decompress the gzip members of `handle`, at most `limit` bytes of output."""
    out = bytearray()
    stream, started = zlib.decompressobj(_GZIP_WBITS), False
    try:
        while chunk := handle.read(_CHUNK):
            while chunk:
                started = True
                room = 0 if limit is None else limit + 1 - len(out)
                out += stream.decompress(chunk, room)
                if limit is not None and len(out) > limit:
                    raise DataError(f"{path}: decompresses to more than the official file's "
                                    f"{limit:,d} bytes; it is not the official file")
                if stream.eof:  # another gzip member may follow (as gzip.decompress reads)
                    chunk = stream.unused_data.lstrip(b"\0")  # zero padding is allowed
                    if chunk and not chunk.startswith(_GZIP_MAGIC[:1]):
                        raise DataError(f"{path}: trailing garbage after the gzip stream")
                    stream, started = zlib.decompressobj(_GZIP_WBITS), False
                else:
                    chunk = stream.unconsumed_tail
    except zlib.error as err:
        raise DataError(f"{path}: gzip stream is corrupt ({err})") from None
    if started and not stream.eof:
        raise DataError(f"{path}: gzip stream is truncated")
    return bytes(out)


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
