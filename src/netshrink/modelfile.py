"""What netshrink checks in a model file before it builds anything from it.

A file is untrusted input. Before a single weight is allocated, `netshrink.load` checks:

1. the metadata: valid JSON nested at most MAX_DEPTH deep, of the schema netshrink writes
   (`check_header`: the type of every field, the model spec, each transform entry's shape);
2. the tensors the file holds, from the safetensors header alone (`file_layout`: names, dtypes,
   shapes; a sparse tensor's shape agrees with the bits actually stored);
3. the architecture the metadata describes, built on the `meta` device (no memory) and
   compared tensor by tensor, shape and dtype, with what the file holds (`check_layout`): so
   an architecture is never larger than the tensors present, and a 5 kB file cannot make
   netshrink allocate gigabytes;
4. the checksum of the tensor data (`verify_checksum`, files of format 4 and later): a flipped
   bit in the weights is refused instead of loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from safetensors import safe_open

MAX_DEPTH = 64  # metadata nested deeper than this is refused before it is walked
CHECKSUM_SINCE = 4  # files of this format version and later must carry a checksum
_HEX64 = re.compile(r"[0-9a-f]{64}")
# safetensors dtype names of the torch dtypes a model file may hold
_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
# The errors building or replaying from metadata can raise when the metadata is wrong in a way
# no schema foresaw; they are reported as a corrupt file, never as a traceback.
BUILD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError,
                OverflowError, RecursionError, AssertionError, NotImplementedError)


def corrupt(path: str | os.PathLike, what: str) -> NetshrinkError:
    return NetshrinkError(f"{path}: corrupt netshrink metadata ({what})")


# ---- 1. the metadata --------------------------------------------------------------------

def parse_metadata(raw: object, path: str | os.PathLike) -> dict:
    """The metadata JSON text `raw` as a dict, refusing invalid or too deeply nested JSON."""
    if not isinstance(raw, str):
        raise corrupt(path, "not text")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise NetshrinkError(f"{path}: corrupt netshrink metadata ({err})") from None
    except RecursionError:
        raise corrupt(path, f"nested deeper than {MAX_DEPTH} levels") from None
    if depth(header) > MAX_DEPTH:
        raise corrupt(path, f"nested deeper than {MAX_DEPTH} levels")
    return header


def depth(value: object) -> int:
    """How deeply lists and dicts nest in `value` (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


def check_header(header: dict, path: str | os.PathLike, current_version: int) -> None:
    """Refuse metadata that is not of the shape netshrink writes (the field named)."""
    from netshrink.core import transforms

    version = header.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise corrupt(path, "format_version")
    if version > current_version:
        raise NetshrinkError(f"{path}: written by a newer netshrink (format {version}); upgrade")
    spec = header.get("model")
    if spec is not None:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or \
                not spec["name"] or not isinstance(spec.get("args", {}), dict):
            raise corrupt(path, "model: a mapping with a name and args")
        if not all(isinstance(k, str) for k in spec.get("args", {})):
            raise corrupt(path, "model args")
    for key in ("versions", "user"):
        if not isinstance(header.get(key, {}), dict):
            raise corrupt(path, f"{key} must be a mapping")
    try:
        transforms.check_entries(header.get("transforms", []))
    except NetshrinkError as err:
        raise NetshrinkError(f"{path}: {err}") from None
    _check_sparse(header.get("sparse", {}), path)
    digest = header.get("checksum")
    if digest is not None and (not isinstance(digest, str) or not _HEX64.fullmatch(digest)):
        raise corrupt(path, "checksum")
    if digest is None and version >= CHECKSUM_SINCE:
        raise corrupt(path, f"format {version} files carry a checksum; it is missing")


def _check_sparse(sparse, path) -> None:
    if not isinstance(sparse, dict):
        raise corrupt(path, "sparse")
    for name, info in sparse.items():
        if not isinstance(info, dict) or not is_shape(info.get("shape")) or \
                not isinstance(info.get("mask", False), bool):
            raise NetshrinkError(f"{path}: corrupt sparse tensor {name!r} (its shape)")


def is_shape(shape: object) -> bool:
    """A tensor shape as a file may hold it: a short list of non-negative integers."""
    return isinstance(shape, list) and len(shape) <= 16 and all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape)


# ---- 2. the tensors the file holds ------------------------------------------------------

def file_layout(
    handle: safe_open,
    header: dict,
    path: str | os.PathLike,
    mask_suffix: str,
    values_suffix: str,
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (dtype, shape)} of the tensors a file holds, sparse ones as they load (dense),
    from the safetensors header of the open `handle` alone (nothing is read)."""
    stored = {}
    for key in handle.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
        part = handle.get_slice(key)
        stored[key] = (part.get_dtype(), tuple(part.get_shape()))
    sparse = header.get("sparse") or {}
    for name, info in sparse.items():
        bits, values = stored.pop(name + mask_suffix, None), stored.pop(name + values_suffix,
                                                                        None)
        if bits is None or values is None:
            raise NetshrinkError(f"{path}: corrupt sparse tensor {name!r} (parts missing)")
        numel = math.prod(info["shape"])
        if bits[0] != "U8" or bits[1] != ((numel + 7) // 8,) or len(values[1]) != 1 or \
                values[1][0] > numel:
            raise NetshrinkError(f"{path}: corrupt sparse tensor {name!r} (bad mask)")
        stored[name] = (values[0], tuple(info["shape"]))
    return stored


# ---- 3. the architecture, against the file ----------------------------------------------

def safetensors_dtype(dtype: torch.dtype) -> str | None:
    """The safetensors name of a torch dtype ("F32"), as `file_layout` and `model_layout`
    report dtypes."""
    return _DTYPES.get(dtype)


def model_layout(model: nn.Module) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    """{name: (dtype, shape)} of what `model.state_dict()` holds (works on the meta device)."""
    return {k: (_DTYPES.get(v.dtype), tuple(v.shape)) for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor)}


def check_layout(model: nn.Module, stored: dict, path: str | os.PathLike) -> None:
    """Refuse a file whose tensors are not exactly the model's (names, shapes, dtypes)."""
    expected = model_layout(model)
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing {_names(missing)}")
    if extra:
        problems.append(f"unexpected {_names(extra)}")
    for name in sorted(set(expected) & set(stored)):
        (want_dtype, want_shape), (dtype, shape) = expected[name], stored[name]
        if want_shape != shape:
            problems.append(f"{name} is {list(shape)} in the file, {list(want_shape)} in the "
                            "model")
        elif want_dtype is not None and want_dtype != dtype:
            problems.append(f"{name} is {dtype} in the file, {want_dtype} in the model")
        if len(problems) >= 3:
            break
    if problems:
        raise NetshrinkError(f"{path}: weights do not fit the model: {'; '.join(problems)}")


def _names(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


@contextlib.contextmanager
def rebuilding(path: str | os.PathLike) -> Iterator[None]:
    """Report an error that metadata caused while a model is built or replayed from it as a
    corrupt file (the schema checks catch the usual ones; this catches what they cannot)."""
    try:
        yield
    except NetshrinkError:
        raise
    except BUILD_ERRORS as err:
        message = str(err).splitlines()[0][:200] if str(err) else ""
        raise NetshrinkError(f"{path}: corrupt netshrink metadata: the model it describes "
                             f"cannot be built ({type(err).__name__}: {message})") from None


def on_meta(build: Callable[[], nn.Module], path: str | os.PathLike) -> nn.Module:
    """`build()` run on the meta device: the architecture's shapes without its memory."""
    with rebuilding(path), torch.device("meta"):
        return build()


# ---- 4. the checksum --------------------------------------------------------------------

def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors as stored: each name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def verify_checksum(
    tensors: dict[str, torch.Tensor],
    header: dict,
    path: str | os.PathLike,
) -> None:
    """Refuse tensors whose checksum differs from the one the file recorded (none: an older
    file, loaded as before)."""
    recorded = header.get("checksum")
    if recorded is not None and checksum(tensors) != recorded:
        raise NetshrinkError(f"{path}: the tensor data does not match its checksum: the file "
                             "is corrupt (a changed or flipped byte); restore it from a copy")
