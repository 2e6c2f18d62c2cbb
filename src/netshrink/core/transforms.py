"""The record of what was done to a model's structure, and its replay onto a fresh model.

A model carries `netshrink_transforms`: the structural transforms applied to it, in order
(BatchNorm folded, attention decomposed, layers swapped for quantization-aware or integer
modules, weights shared). `netshrink.save` writes that list, then which weights are masked;
`netshrink.load` replays the list onto a freshly built model (the zoo's, or the user's own
instance) before it loads the weights, then installs the masks. Each kind of entry has one
replay function in `_REPLAYS`, an explicit table: nothing depends on which module happened to
be imported.
"""

from __future__ import annotations

import importlib

from torch import nn

from netshrink.errors import NetshrinkError

# kind -> (module, function(model, entry) -> model); imported when a file needs it.
_REPLAYS = {
    "quantize": ("netshrink.quant.replay", "replay"),
    "fold": ("netshrink.quant.replay", "replay_folding"),
    "prune-mask": ("netshrink.prune.mask", "replay_masks"),
    "structured": ("netshrink.prune.rewrite", "replay"),
    "share": ("netshrink.pack.share", "replay_share"),
}
# Kinds replayed after the weights are loaded (their state is read from the weights).
AFTER_LOAD = frozenset({"prune-mask"})
# kind -> (module, function(entry) -> None): the shape of an entry read from a file, checked
# before anything is built from it (raising NetshrinkError naming the field).
_CHECKS = {
    "quantize": ("netshrink.quant.replay", "check_entry"),
    "fold": ("netshrink.quant.replay", "check_fold_entry"),
    "prune-mask": ("netshrink.prune.mask", "check_entry"),
    "structured": ("netshrink.prune.rewrite", "check_entry"),
    "share": ("netshrink.pack.share", "check_entry"),
}


def record(model: nn.Module, entry: dict) -> None:
    """Remember on `model` that a structural transform was applied (replayed by `load`)."""
    if not isinstance(entry.get("kind"), str) or entry["kind"] not in _REPLAYS:
        raise ValueError(f"unknown transform kind {entry.get('kind')!r}")
    model.netshrink_transforms = [*recorded(model), entry]


def recorded(model: nn.Module) -> list[dict]:
    """The structural transforms recorded on `model`, in order."""
    return list(getattr(model, "netshrink_transforms", None) or [])


def _replay_function(kind: str):
    if kind not in _REPLAYS:
        raise NetshrinkError(f"unknown transform {kind!r}; upgrade netshrink")
    module, name = _REPLAYS[kind]
    return getattr(importlib.import_module(module), name)


def check_entries(entries: object) -> list[dict]:
    """The transform list of a file, refused unless it is a list of entries with known kinds,
    each of the shape its kind writes."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise NetshrinkError("corrupt metadata: 'transforms' must be a list of mappings")
    for position, entry in enumerate(entries, start=1):
        kind = entry.get("kind")
        if not isinstance(kind, str):
            raise NetshrinkError(f"corrupt metadata: transform {position} has no kind")
        _replay_function(kind)
        if kind in _CHECKS:
            module, name = _CHECKS[kind]
            try:
                getattr(importlib.import_module(module), name)(entry)
            except NetshrinkError as err:
                raise NetshrinkError(f"corrupt metadata: transform {position} ({kind}): "
                                     f"{err}") from None
    return entries


def replay_structure(model: nn.Module, entries: list[dict]) -> nn.Module:
    """Replay the structural entries onto `model` (an untrained, untransformed instance)."""
    structural = [e for e in entries if e.get("kind") not in AFTER_LOAD]
    if recorded(model) == structural:
        return model  # the instance already went through them (e.g. the user re-ran quantize_)
    if recorded(model):
        raise NetshrinkError("the model given was transformed differently from the file's; "
                             "pass a freshly built float instance")
    for entry in structural:
        model = _replay_function(entry["kind"])(model, entry) or model
    model.netshrink_transforms = structural
    return model


def replay_after_load(model: nn.Module, entries: list[dict], masks: dict) -> None:
    """Replay the entries that need the loaded weights: masks (`masks`: those the file stored
    by their bits; the others are read from the weights' zeros)."""
    for entry in entries:
        if entry.get("kind") in AFTER_LOAD:
            _replay_function(entry["kind"])(model, entry, masks)
