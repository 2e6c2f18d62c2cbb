"""Model files: safetensors tensors plus JSON metadata. Loading never unpickles anything.

The metadata records how to rebuild the model: its registry name and arguments, then the
structural transforms applied since (pruning that removes channels, quantization that swaps
modules), each replayed by a function registered under its `kind`. So a file written by
`netshrink.save` is loaded with `netshrink.load(path)` alone.

Mostly-zero tensors (a pruned model's weights) are stored sparse by default: a bit per element
saying which are non-zero, then the non-zero values in order. A 90%-pruned float32 layer then
takes about 0.53 bytes per weight instead of 4, so pruning shows on disk, not only in counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path

FORMAT = "netshrink-model"
FORMAT_VERSION = 2  # 2: sparse tensors (files without them are still written as version 1)
_MASK, _VALUES = ".__sparse_mask__", ".__sparse_values__"
SPARSE_WORTH_IT = 0.75  # store sparse when that takes at most this fraction of the dense bytes
_TRANSFORMS: dict[str, Callable[[nn.Module, dict], nn.Module]] = {}


def register_transform(kind: str, rebuild: Callable[[nn.Module, dict], nn.Module]) -> None:
    """Teach `load` to replay a structural transform recorded as {"kind": kind, ...}."""
    _TRANSFORMS[kind] = rebuild


def record_transform(model: nn.Module, entry: dict) -> None:
    """Remember on the model that a structural transform was applied (replayed by `load`)."""
    if "kind" not in entry:
        raise ValueError("a transform entry needs a 'kind'")
    model.netshrink_transforms = [*getattr(model, "netshrink_transforms", []), entry]


def _versions() -> dict:
    from netshrink import __version__

    return {"netshrink": __version__, "torch": torch.__version__}


def _encode_sparse(tensors: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Replace mostly-zero tensors in `tensors` by a packed bit mask and their non-zeros."""
    sparse = {}
    for name in list(tensors):
        tensor = tensors[name]
        if tensor.numel() < 256 or tensor.dtype == torch.bool or tensor.is_complex():
            continue
        flat = tensor.reshape(-1)
        keep = flat != 0
        sparse_bytes = (flat.numel() + 7) // 8 + int(keep.sum()) * tensor.element_size()
        if sparse_bytes > SPARSE_WORTH_IT * flat.numel() * tensor.element_size():
            continue
        tensors[name + _MASK] = torch.from_numpy(np.packbits(keep.numpy()))
        tensors[name + _VALUES] = flat[keep].clone()
        sparse[name] = {"shape": list(tensor.shape)}
        del tensors[name]
    return sparse


def _decode_sparse(tensors: dict[str, torch.Tensor], sparse: dict, path) -> None:
    """Undo `_encode_sparse` in place, refusing masks and values that do not agree."""
    for name, info in sparse.items():
        bits, values = tensors.pop(name + _MASK, None), tensors.pop(name + _VALUES, None)
        shape = info.get("shape") if isinstance(info, dict) else None
        if bits is None or values is None or not isinstance(shape, list):
            raise NetshrinkError(f"{path}: corrupt sparse tensor {name!r} (parts missing)")
        numel = int(np.prod(shape, dtype=np.int64))
        if bits.dtype != torch.uint8 or bits.numel() != (numel + 7) // 8 or values.dim() != 1:
            raise NetshrinkError(f"{path}: corrupt sparse tensor {name!r} (bad mask)")
        keep = torch.from_numpy(np.unpackbits(bits.numpy(), count=numel).astype(bool))
        if int(keep.sum()) != values.numel() or np.unpackbits(bits.numpy())[numel:].any():
            raise NetshrinkError(
                f"{path}: corrupt sparse tensor {name!r} ({values.numel()} values for "
                f"{int(keep.sum())} set bits)"
            )
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[keep] = values
        tensors[name] = dense.reshape(shape)


def save(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None,
         sparse: bool = True) -> Path:
    """Write `model`'s weights and how to rebuild it to `path` (atomically).

    sparse: store tensors that are mostly zeros as a bit mask plus their non-zero values (only
    where that takes at most 3/4 of the dense bytes); False stores every tensor dense.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
               if isinstance(v, torch.Tensor)}
    sparse_tensors = _encode_sparse(tensors) if sparse else {}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if sparse_tensors else 1,
        "model": getattr(model, "netshrink_spec", None),
        "transforms": getattr(model, "netshrink_transforms", []),
        "versions": _versions(),
        "user": metadata or {},
    }
    if sparse_tensors:
        header["sparse"] = sparse_tensors
    try:
        text = json.dumps(header)
    except TypeError as err:
        raise NetshrinkError(f"metadata must be JSON-serializable: {err}") from None
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"netshrink": text})
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a netshrink model file, refusing anything else."""
    path = Path(path)
    if not path.is_file():
        raise NetshrinkError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("netshrink")
    except (SafetensorError, OSError, ValueError) as err:
        raise NetshrinkError(
            f"{path}: not a valid safetensors file, or truncated ({err})"
        ) from None
    if raw is None:
        raise NetshrinkError(f"{path}: a safetensors file without netshrink metadata")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise NetshrinkError(f"{path}: corrupt netshrink metadata ({err})") from None
    if header.get("format") != FORMAT:
        raise NetshrinkError(f"{path}: not a netshrink model file")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise NetshrinkError(
            f"{path}: written by a newer netshrink (format {header['format_version']}); upgrade"
        )
    return header


def read_tensors(path: str | os.PathLike, header: dict | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, loaded without unpickling (sparse ones made dense)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            raw = (handle.metadata() or {}).get("netshrink")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise NetshrinkError(f"{path}: corrupt or truncated tensor data ({err})") from None
    if header is None and raw is not None:
        header = read_metadata(path)
    sparse = (header or {}).get("sparse") or {}
    if not isinstance(sparse, dict):
        raise NetshrinkError(f"{path}: corrupt netshrink metadata (sparse)")
    _decode_sparse(tensors, sparse, path)
    return tensors


def load(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the model saved at `path` (or load its weights into `model`) and return it."""
    header = read_metadata(path)
    if model is None:
        model = rebuild(header, path)
    tensors = read_tensors(path, header)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise NetshrinkError(f"{path}: weights do not fit the model: {err}") from None
    model.netshrink_spec = header["model"]
    model.netshrink_transforms = header["transforms"]
    return model


def rebuild(header: dict, path: str | os.PathLike = "<file>") -> nn.Module:
    """An untrained model with the architecture the metadata describes."""
    from netshrink import models

    spec = header.get("model")
    if not spec:
        raise NetshrinkError(
            f"{path}: the model was not built by netshrink.models.create, so the file holds "
            "only weights; pass the model: netshrink.load(path, model=YourModel())"
        )
    model = models.create(spec["name"], **spec["args"])
    for entry in header.get("transforms", []):
        kind = entry.get("kind")
        if kind not in _TRANSFORMS:
            _import_transform_providers()
        if kind not in _TRANSFORMS:
            raise NetshrinkError(f"{path}: unknown transform {kind!r}; upgrade netshrink")
        model = _TRANSFORMS[kind](model, entry)
    return model


def _import_transform_providers() -> None:
    """Import the subpackages that register transforms (they register on import)."""
    import importlib

    for name in ("netshrink.prune", "netshrink.quant"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
