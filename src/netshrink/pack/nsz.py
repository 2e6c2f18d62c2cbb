"""The compressed model file, `.nsz`: Deep Compression's storage (positions of the surviving
weights, their codebook indices or integer values, entropy coded), with netshrink's metadata.

    MAGIC (8 bytes) | header length (uint32, little-endian) | header | payload | checksum

- header: the JSON metadata, zlib-compressed: format and version, the model's registry name
  and arguments, its transforms (as netshrink.save writes them, so `load` rebuilds the model
  the same way, the zoo's or the user's fresh instance), the versions, the user's metadata, the
  coder, one entry per state_dict tensor saying how it is stored and where its bytes are, and
  a BLAKE2b digest of the decoded tensors;
- payload: the tensors' bytes, one after another;
- checksum: BLAKE2b-128 of everything before it. A truncated, bit-flipped or altered file is
  refused before anything is decoded; the content digest then catches a decoder that does not
  give back what was written (another version of the coder library, say).

A checksum is no defence against a file crafted with a valid one, so before anything is
decoded `read` also bounds the header (decompressed at most MAX_HEADER_RATIO times its
compressed size, JSON nested at most netshrink.modelfile.MAX_DEPTH deep), checks its schema as
netshrink.save's metadata is checked (netshrink.modelfile.check_header) and each tensor entry
(name, dtype, shape, code), and caps the entries all tensors hold together at MAX_EXPANSION per
byte of the file; `load` builds the architecture on the meta device and compares it with the
entries before it decodes a tensor (docs/errors.md).

Each tensor is stored one of three ways (docs/pack.md has the measured choices):
- "raw": its bytes (biases, normalization, codebooks, scales: small or dense floats);
- "sparse": the positions of its kept entries (netshrink.pack.positions: the smallest of a
  bitmask, the paper's relative index with filler symbols, or an adaptive column model),
  then the kept values, raw floats;
- "symbols": integers (a shared weight's codebook indices, an int8 layer's values) as
  symbols value - offset, entropy coded, at the kept positions only when that is smaller.
A masked tensor's positions are its mask, restored as the mask on load. Nothing is pickled;
the file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netshrink.core import transforms
from netshrink.core.masks import all_masks
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write
from netshrink.pack import coding, positions

MAGIC = b"\x89NSZ\r\n\x1a\n"
FORMAT = "netshrink-nsz"
FORMAT_VERSION = 1
SUFFIX = ".nsz"
DIGEST_BYTES = 16
_PREAMBLE = len(MAGIC) + 4
MAX_HEADER_RATIO = 256    # a header's JSON text is at most this many times its zlib bytes
MAX_EXPANSION = 256       # tensor entries per byte of the file (real files: 1 to 30) ...
MIN_ENTRIES = 2**20       # ... or this many, whichever is larger
_CODES = ("raw", "sparse", "symbols")
SMALL = 32            # tensors with fewer entries are stored raw
MAX_ALPHABET = 1 << 16
_DTYPES = {name: getattr(torch, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64",
    "bool")}


def is_nsz(path: str | os.PathLike) -> bool:
    """True when the file at `path` starts with the .nsz magic bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def _dtype_name(tensor: torch.Tensor) -> str:
    name = str(tensor.dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise NetshrinkError(f"cannot store a {name} tensor in a .nsz file")
    return name


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _from_raw(data: bytes, dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != count * torch.empty(0, dtype=dtype).element_size():
        raise ValueError("raw bytes of the wrong length")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)


def content_digest(tensors: dict[str, torch.Tensor]) -> str:
    """Hex BLAKE2b of the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for name in sorted(tensors):
        t = tensors[name]
        h.update(json.dumps([name, _dtype_name(t), list(t.shape)]).encode())
        h.update(_raw_bytes(t))
    return h.hexdigest()


# --- writing ------------------------------------------------------------------------------------


class _Payload:
    """The payload being written: append bytes, get back [offset, length]."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        where = [self.size, len(data)]
        self.parts.append(data)
        self.size += len(data)
        return where


def _symbols_entry(values: np.ndarray, coder: str) -> tuple[dict, bytes]:
    offset = int(values.min()) if values.size else 0
    alphabet = (int(values.max()) - offset + 1) if values.size else 1
    data, model = coding.encode(values - offset, alphabet, coder)
    return {"offset": offset, "alphabet": alphabet, "count": int(values.size), **model}, data


def _size(entry: dict, *blobs: bytes) -> int:
    return len(json.dumps(entry, separators=(",", ":"))) + sum(len(b) for b in blobs)


def encode_tensor(tensor: torch.Tensor, mask: torch.Tensor | None, coder: str,
                  payload: _Payload) -> dict:
    """The header entry of `tensor` (its bytes appended to `payload`)."""
    tensor = tensor.detach().cpu()
    entry = {"dtype": _dtype_name(tensor), "shape": list(tensor.shape)}
    if mask is not None:
        entry["mask"] = True
    raw = {**entry, "code": "raw"}
    if (tensor.numel() < SMALL and mask is None) or tensor.dtype == torch.bool:
        return {**raw, "data": payload.add(_raw_bytes(tensor))}
    keep = (tensor != 0) if mask is None else mask.cpu().bool()
    keep_np = keep.numpy()
    options = []
    if mask is None:
        options.append((raw, [_raw_bytes(tensor)]))
    if tensor.is_floating_point():
        where, pos_data = positions.encode(keep_np, coder)
        options.append(({**entry, "code": "sparse", "positions": where},
                        [pos_data, _raw_bytes(tensor[keep])]))
    else:
        values = tensor.numpy().astype(np.int64)
        if values.size and int(values.max()) - int(values.min()) < MAX_ALPHABET:
            if mask is None:
                dense, data = _symbols_entry(values.reshape(-1), coder)
                options.append(({**entry, "code": "symbols", "values": dense}, [b"", data]))
            where, pos_data = positions.encode(keep_np, coder)
            kept, data = _symbols_entry(values[keep_np], coder)
            options.append(({**entry, "code": "symbols", "positions": where, "values": kept},
                            [pos_data, data]))
    if not options:
        return {**raw, "data": payload.add(_raw_bytes(tensor))}
    best, blobs = min(options, key=lambda option: _size(option[0], *option[1]))
    if best["code"] == "raw":
        return {**best, "data": payload.add(blobs[0])}
    if "positions" in best:
        best["positions"] = {**best["positions"], "data": payload.add(blobs[0])}
    if best["code"] == "sparse":
        best["values"] = {"data": payload.add(blobs[1])}
    else:
        best["values"] = {**best["values"], "data": payload.add(blobs[1])}
    return best


def save(model: nn.Module, path: str | os.PathLike, coder: str = "ans",
         metadata: dict | None = None) -> Path:
    """Write `model` as a .nsz file at `path` (atomically) and return the path.

    coder: "ans" (the smallest, docs/pack.md), "huffman" (the paper's), or "bits" (fixed-width
    symbols and relative indices: Deep Compression's stage before entropy coding).
    """
    from netshrink.prune.mask import transform_entry
    from netshrink.serialize import _versions

    if coder not in coding.CODERS:
        raise NetshrinkError(f"coder={coder!r} must be one of {', '.join(coding.CODERS)}")
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if isinstance(v, torch.Tensor)}
    masks = {k: m for k, m in all_masks(model).items() if k in state}
    payload = _Payload()
    entries = []
    for name, tensor in state.items():
        entries.append({"name": name, **encode_tensor(tensor, masks.get(name), coder, payload)})
    content = _verified_digest(entries, b"".join(payload.parts), coder, state)
    mask_entry = transform_entry(model)
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": getattr(model, "netshrink_spec", None),
        "transforms": transforms.recorded(model) + ([mask_entry] if mask_entry else []),
        "versions": _versions(), "user": metadata or {}, "coder": coder,
        "tensors": entries, "content": content,
    }
    try:
        text = json.dumps(header, separators=(",", ":"))
    except TypeError as err:
        raise NetshrinkError(f"metadata must be JSON-serializable: {err}") from None
    packed = zlib.compress(text.encode(), 9)
    body = MAGIC + struct.pack("<I", len(packed)) + packed + b"".join(payload.parts)
    atomic_write(path, body + _digest(body))
    return Path(path)


def _verified_digest(entries: list[dict], payload: bytes, coder: str,
                     state: dict[str, torch.Tensor]) -> str:
    """Decode what is about to be written, check it is the model's tensors (a pruned entry may
    come back +0.0 where the model holds -0.0), and return the digest of the decoded ones."""
    decoded = {}
    for entry in entries:
        name = entry["name"]
        decoded[name] = decode_tensor(entry, payload, coder)[0]
        original = state[name]
        same = decoded[name].dtype == original.dtype and torch.equal(
            torch.nan_to_num(decoded[name]) if original.is_floating_point() else decoded[name],
            torch.nan_to_num(original) if original.is_floating_point() else original)
        if not same:
            raise RuntimeError(f"netshrink bug: {name} does not decode to what was encoded")
    return content_digest(decoded)


# --- reading ------------------------------------------------------------------------------------


def _checked_body(path: Path) -> bytes:
    if not path.is_file():
        raise NetshrinkError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:len(MAGIC)] != MAGIC:
        raise NetshrinkError(f"{path}: not a netshrink .nsz file (wrong magic bytes)")
    body, digest = raw[:-DIGEST_BYTES], raw[-DIGEST_BYTES:]
    if len(raw) < _PREAMBLE + DIGEST_BYTES or _digest(body) != digest:
        raise NetshrinkError(f"{path}: checksum mismatch: the file is truncated or was altered "
                             f"({len(raw):,} bytes); write it again from the model")
    return body


def read(path: str | os.PathLike) -> tuple[dict, bytes]:
    """(header, payload) of a .nsz file, refused unless its checksum and header are sound."""
    from netshrink import modelfile

    path = Path(path)
    body = _checked_body(path)
    (length,) = struct.unpack("<I", body[len(MAGIC):_PREAMBLE])
    header = modelfile.parse_metadata(_header_text(body[_PREAMBLE:_PREAMBLE + length], path),
                                      path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise NetshrinkError(f"{path}: not a netshrink .nsz file")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise NetshrinkError(f"{path}: corrupt .nsz header (format_version)")
    if version > FORMAT_VERSION:
        raise NetshrinkError(f"{path}: written by a newer netshrink (.nsz format {version}); "
                             "upgrade")
    if not isinstance(header.get("tensors"), list) or header.get("coder") not in coding.CODERS:
        raise NetshrinkError(f"{path}: corrupt .nsz header (tensors or coder)")
    modelfile.check_header(header, path, FORMAT_VERSION)
    _check_entries(header["tensors"], path, len(body) + DIGEST_BYTES)
    return header, body[_PREAMBLE + length:]


def _header_text(packed: bytes, path: Path) -> str:
    """The header's JSON text, never decompressed past MAX_HEADER_RATIO times its bytes."""
    limit = MAX_HEADER_RATIO * len(packed) + 4096
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(packed, limit)
    except zlib.error as err:
        raise NetshrinkError(f"{path}: corrupt .nsz header ({err})") from None
    if inflate.unconsumed_tail:
        raise NetshrinkError(f"{path}: corrupt .nsz header (decompresses to more than "
                             f"{MAX_HEADER_RATIO} times its {len(packed):,} bytes)")
    if not inflate.eof:
        raise NetshrinkError(f"{path}: corrupt .nsz header (truncated)")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise NetshrinkError(f"{path}: corrupt .nsz header (not UTF-8 text)") from None


def _check_entries(entries: list, path: Path, file_bytes: int) -> None:
    """Each tensor entry named once, of a known dtype, shape and code; all of them together
    at most MAX_EXPANSION entries per byte of the file, so decoding stays bounded."""
    from netshrink import modelfile

    names, total = set(), 0
    for position, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in names:
            raise NetshrinkError(f"{path}: corrupt .nsz header (tensor {position}: its name is "
                                 "missing or repeated)")
        names.add(name)
        if entry.get("dtype") not in _DTYPES or not modelfile.is_shape(entry.get("shape")) or \
                entry.get("code") not in _CODES:
            raise NetshrinkError(f"{path}: corrupt .nsz header (tensor {name[:80]!r}: its "
                                 "dtype, shape or code)")
        total += int(np.prod(entry["shape"], dtype=np.float64))
    allowed = max(MIN_ENTRIES, MAX_EXPANSION * file_bytes)
    if total > allowed:
        raise NetshrinkError(f"{path}: corrupt .nsz header: its tensors hold {total:,.0f} "
                             f"entries, more than {MAX_EXPANSION} per byte of a "
                             f"{file_bytes:,}-byte file ({allowed:,})")


def layout(header: dict) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    """{name: (safetensors dtype, shape)} of the tensors a checked header describes, as
    netshrink.modelfile.check_layout compares them with a model."""
    from netshrink import modelfile

    return {e["name"]: (modelfile.safetensors_dtype(_DTYPES[e["dtype"]]), tuple(e["shape"]))
            for e in header["tensors"]}


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON header of a .nsz file (checksum verified)."""
    return read(path)[0]


def _blob(payload: bytes, where) -> bytes:
    if not (isinstance(where, list) and len(where) == 2 and all(isinstance(v, int) and v >= 0
                                                               for v in where)) or \
            where[0] + where[1] > len(payload):
        raise ValueError("bytes outside the payload")
    return payload[where[0]:where[0] + where[1]]


def decode_tensor(entry: dict, payload: bytes, coder: str
                  ) -> tuple[torch.Tensor, np.ndarray | None]:
    """(tensor, kept positions or None) of a header entry (ValueError, KeyError or TypeError
    when corrupt)."""
    dtype, shape = _DTYPES[entry["dtype"]], [int(s) for s in entry["shape"]]
    if entry["code"] == "raw":
        return _from_raw(_blob(payload, entry["data"]), dtype, shape), None
    where = entry.get("positions")
    total = int(np.prod(shape, dtype=np.int64))
    keep = None if where is None else positions.decode(where, _blob(payload, where["data"]),
                                                      tuple(shape)).reshape(-1)
    if entry["code"] == "sparse":
        if keep is None:
            raise ValueError("sparse tensor without positions")
        kept = _from_raw(_blob(payload, entry["values"]["data"]), dtype, [int(keep.sum())])
        out = torch.zeros(total, dtype=dtype)
        out[torch.from_numpy(keep)] = kept
        return out.reshape(shape), keep
    if entry["code"] != "symbols":
        raise ValueError(f"unknown tensor code {entry['code']!r}")
    values = entry["values"]
    count = total if keep is None else int(keep.sum())
    if values.get("count") != count:
        raise ValueError("symbol count does not match the positions")
    symbols = coding.decode(_blob(payload, values["data"]), values, count,
                            int(values["alphabet"]), coder) + int(values["offset"])
    out = np.zeros(total, dtype=np.int64)
    if keep is None:
        out[:] = symbols
    else:
        out[keep] = symbols
    return torch.from_numpy(out).to(dtype).reshape(shape), keep


def read_tensors(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(header, {name: tensor}, {name: mask}) of a .nsz file, every check done."""
    header, payload = read(path)
    return (header, *_decoded(header, payload, path))


def _decoded(header: dict, payload: bytes, path) -> tuple[dict, dict]:
    """({name: tensor}, {name: mask}) of a checked header, their digest verified."""
    tensors, masks = {}, {}
    for entry in header["tensors"]:
        name = entry["name"]
        try:
            tensor, keep = decode_tensor(entry, payload, header["coder"])
        except (ValueError, KeyError, TypeError, RuntimeError, OverflowError,
                IndexError) as err:
            raise NetshrinkError(f"{path}: corrupt tensor {name!r} ({err})") from None
        tensors[name] = tensor
        if entry.get("mask"):
            masks[name] = tensor != 0 if keep is None else \
                torch.from_numpy(keep.copy()).reshape(tensor.shape)
    if content_digest(tensors) != header.get("content"):
        raise NetshrinkError(f"{path}: the decoded tensors do not match the file's digest (a "
                             "different version of the coder library?); write the file again")
    return tensors, masks


def load(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the model of a .nsz file (as netshrink.load does for safetensors files): the
    architecture is checked against the file's tensor entries before any is decoded."""
    from netshrink.serialize import build_and_fill

    header, payload = read(path)
    return build_and_fill(header, layout(header), model, path,
                          lambda: _decoded(header, payload, path))


def breakdown(path: str | os.PathLike) -> list[dict]:
    """Per tensor of a .nsz file: how it is stored and its bytes (positions and values)."""
    header, _ = read(path)
    rows = []
    for entry in header["tensors"]:
        where = entry.get("positions") or {}
        values = entry.get("values") or {}
        rows.append({"name": entry["name"], "shape": entry["shape"], "code": entry["code"],
                     "position_code": where.get("code"), "gap_bits": where.get("bits"),
                     "kept": where.get("kept"),
                     "position_bytes": (where.get("data") or [0, 0])[1],
                     "value_bytes": (values.get("data") or entry.get("data") or [0, 0])[1]})
    return rows
