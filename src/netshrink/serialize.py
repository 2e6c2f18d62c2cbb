"""Model files: safetensors tensors plus JSON metadata. Loading never unpickles anything.

The metadata records how to rebuild the model: its registry name and arguments, then the
structural transforms applied since (pruning that removes channels, quantization that swaps
modules), each replayed by a function registered under its `kind`. So a file written by
`netshrink.save` is loaded with `netshrink.load(path)` alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path

FORMAT = "netshrink-model"
FORMAT_VERSION = 1
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


def save(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write `model`'s weights and how to rebuild it to `path` (atomically)."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": getattr(model, "netshrink_spec", None),
        "transforms": getattr(model, "netshrink_transforms", []),
        "versions": _versions(),
        "user": metadata or {},
    }
    try:
        text = json.dumps(header)
    except TypeError as err:
        raise NetshrinkError(f"metadata must be JSON-serializable: {err}") from None
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
               if isinstance(v, torch.Tensor)}
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


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, loaded without unpickling."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise NetshrinkError(f"{path}: corrupt or truncated tensor data ({err})") from None


def load(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the model saved at `path` (or load its weights into `model`) and return it."""
    header = read_metadata(path)
    if model is None:
        model = rebuild(header, path)
    tensors = read_tensors(path)
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
