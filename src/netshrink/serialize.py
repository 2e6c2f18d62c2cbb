"""Model files: safetensors tensors plus JSON metadata. Loading never unpickles anything.

The metadata records how to rebuild the model: its registry name and arguments (for the zoo),
then the structural transforms applied since (netshrink.core.transforms), then which weights
are masked. `netshrink.load(path)` rebuilds a zoo model from the file alone;
`netshrink.load(path, model=MyModel())` replays the same transforms onto the user's fresh
float instance. Either way the masks are installed again and the outputs equal the saved
model's.

Sparse tensors: a masked weight is stored as its mask (one bit per entry) plus the kept values,
so the mask comes back exactly; any other mostly-zero tensor is stored the same way (a bit per
non-zero) when that takes at most 3/4 of its dense bytes. A 90%-pruned float32 layer takes
about 0.53 bytes per weight instead of 4, so pruning shows on disk, not only in counts.
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

from netshrink import modelfile
from netshrink.core import transforms
from netshrink.core.masks import all_masks
from netshrink.errors import NetshrinkError, OutputError
from netshrink.fileio import atomic_path

FORMAT = "netshrink-model"
FORMAT_VERSION = 4  # 2: sparse tensors; 3: masked tensors stored by their mask; 4: checksum
_MASK, _VALUES = ".__sparse_mask__", ".__sparse_values__"
SPARSE_WORTH_IT = 0.75  # store sparse when that takes at most this fraction of the dense bytes


def _versions() -> dict:
    from netshrink import __version__

    return {"netshrink": __version__, "torch": torch.__version__}


def _encode_sparse(tensors: dict[str, torch.Tensor],
                   masks: dict[str, torch.Tensor] | None = None) -> dict[str, dict]:
    """Replace masked and mostly-zero tensors in `tensors` by packed bits and their values.

    A masked tensor's bits are its mask (kept entries, zeros among them, are all stored);
    another tensor's bits are its non-zeros, used only where that saves a quarter of its bytes.
    """
    masks = masks or {}
    sparse = {}
    for name in list(tensors):
        tensor = tensors[name]
        flat = tensor.reshape(-1)
        if name in masks:
            keep = masks[name].reshape(-1).cpu().bool()
        else:
            if tensor.numel() < 256 or tensor.dtype == torch.bool or tensor.is_complex():
                continue
            keep = flat != 0
            sparse_bytes = (flat.numel() + 7) // 8 + int(keep.sum()) * tensor.element_size()
            if sparse_bytes > SPARSE_WORTH_IT * flat.numel() * tensor.element_size():
                continue
        tensors[name + _MASK] = torch.from_numpy(np.packbits(keep.numpy()))
        tensors[name + _VALUES] = flat[keep].clone()
        sparse[name] = {"shape": list(tensor.shape), **({"mask": True} if name in masks else {})}
        del tensors[name]
    return sparse


def _decode_sparse(tensors: dict[str, torch.Tensor], sparse: dict, path
                   ) -> dict[str, torch.Tensor]:
    """Undo `_encode_sparse` in place, refusing bits and values that do not agree; return the
    masks of the tensors stored by their mask."""
    masks = {}
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
        if info.get("mask"):
            masks[name] = keep.reshape(shape)
    return masks


def save(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None,
         sparse: bool = True) -> Path:
    """Write `model`'s weights, how to rebuild it and its masks to `path` (atomically).

    sparse: store masked and mostly-zero tensors as bits plus values (see the module
    docstring); False stores every tensor dense (masks are then read back from the zeros).
    A path ending in .nsz writes the compressed file instead (netshrink.pack.nsz.save).
    """
    from netshrink.prune.mask import transform_entry

    path = Path(path)
    if path.suffix == ".nsz":  # the compressed file (netshrink.pack.nsz)
        from netshrink.pack import nsz

        return nsz.save(model, path, metadata=metadata)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
               if isinstance(v, torch.Tensor)}
    masks = {k: m for k, m in all_masks(model).items() if k in tensors}
    sparse_tensors = _encode_sparse(tensors, masks) if sparse else {}
    mask_entry = transform_entry(model)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": getattr(model, "netshrink_spec", None),
        "transforms": transforms.recorded(model) + ([mask_entry] if mask_entry else []),
        "versions": _versions(),
        "user": metadata or {},
    }
    if sparse_tensors:
        header["sparse"] = sparse_tensors
    header["checksum"] = modelfile.checksum(tensors)
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as err:
        raise NetshrinkError(f"metadata must be JSON-serializable: {err}") from None
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"netshrink": text})
        except SafetensorError as err:  # a full disk surfaces here, not as an OSError
            raise OutputError(f"I/O error writing {path}: {err}") from None
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a netshrink model file, refusing anything else."""
    path = Path(path)
    if _is_nsz(path):
        from netshrink.pack import nsz

        return nsz.read_metadata(path)
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
    header = modelfile.parse_metadata(raw, path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise NetshrinkError(f"{path}: not a netshrink model file")
    modelfile.check_header(header, path, FORMAT_VERSION)  # every field, before any is used
    return header


def read_tensors(path: str | os.PathLike, header: dict | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, loaded without unpickling (sparse ones made dense)."""
    if _is_nsz(path):
        from netshrink.pack import nsz

        return nsz.read_tensors(path)[1]
    return _read(path, header)[0]


def _read(path, header: dict | None = None) -> tuple[dict, dict]:
    """(tensors, masks stored with them) of a file, its checksum verified."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            raw = (handle.metadata() or {}).get("netshrink")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise NetshrinkError(f"{path}: corrupt or truncated tensor data ({err})") from None
    if header is None and raw is not None:
        header = read_metadata(path)
    modelfile.verify_checksum(tensors, header or {}, path)
    sparse = (header or {}).get("sparse") or {}
    if not isinstance(sparse, dict):
        raise NetshrinkError(f"{path}: corrupt netshrink metadata (sparse)")
    masks = _decode_sparse(tensors, sparse, path)
    return tensors, masks


def _layout(path, header: dict) -> dict:
    """{name: (dtype, shape)} of the file's tensors, from its header alone."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return modelfile.file_layout(handle, header, path, _MASK, _VALUES)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise NetshrinkError(f"{path}: corrupt or truncated tensor data ({err})") from None


def load(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the model saved at `path` and return it.

    model: your own freshly built float instance of the saved model's class (needed when the
    model was not built by netshrink.models.create); the file's transforms (quantization,
    folding, masks) are replayed onto it, so it behaves exactly as the saved model.
    """
    if _is_nsz(path):
        from netshrink.pack import nsz

        return nsz.load(path, model)
    header = read_metadata(path)
    return build_and_fill(header, _layout(path, header), model, path,
                          lambda: _read(path, header))


def build_and_fill(
    header: dict,
    stored: dict,
    model: nn.Module | None,
    path: str | os.PathLike,
    read_tensors: Callable[[], tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
) -> nn.Module:
    """The model of a file (safetensors or .nsz) from its header: the architecture built
    (zoo: on the meta device first) or the user's instance replayed, checked against the
    file's tensor layout `stored` before `read_tensors()` decodes anything, then the weights
    loaded and the transforms that follow loading replayed."""
    entries = header.get("transforms", [])
    if model is None:  # the architecture on the meta device first: no larger than the file
        modelfile.check_layout(modelfile.on_meta(lambda: rebuild(header, path), path),
                               stored, path)
        model = rebuild(header, path)
    elif not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    else:
        model = _replayed(model, entries, path)
        modelfile.check_layout(model, stored, path)
    tensors, masks = read_tensors()
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise NetshrinkError(f"{path}: weights do not fit the model: {err}") from None
    with modelfile.rebuilding(path):
        transforms.replay_after_load(model, entries, masks)
    if header.get("model") is not None:
        model.netshrink_spec = header["model"]
    return model


def _is_nsz(path) -> bool:
    """A .nsz file, by its name or its magic bytes (so a damaged one gets .nsz's errors)."""
    from netshrink.pack.nsz import is_nsz

    return Path(path).suffix == ".nsz" or is_nsz(path)


def _replayed(model: nn.Module, entries: list[dict], path) -> nn.Module:
    try:
        with modelfile.rebuilding(path):
            return transforms.replay_structure(model, entries)
    except NetshrinkError as err:
        message = str(err)
        raise NetshrinkError(message if message.startswith(f"{path}:") else
                             f"{path}: {err}") from None


def rebuild(header: dict, path: str | os.PathLike = "<file>") -> nn.Module:
    """An untrained model with the architecture (and transforms) the metadata describes."""
    from netshrink import models

    spec = header.get("model")
    if not spec:
        raise NetshrinkError(
            f"{path}: the model was not built by netshrink.models.create, so the file holds "
            "only weights; pass the model: netshrink.load(path, model=YourModel())"
        )
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or \
            not isinstance(spec.get("args", {}), dict):
        raise NetshrinkError(f"{path}: corrupt netshrink metadata (model)")
    with modelfile.rebuilding(path):
        try:
            model = models.create(spec["name"], **spec.get("args", {}))
        except NetshrinkError as err:
            raise NetshrinkError(f"{path}: the file's model cannot be built: {err}") from None
    return _replayed(model, transforms.check_entries(header.get("transforms", [])), path)
