"""Masks: which weights a model keeps. The mechanism that keeps the pruned ones at zero is
`netshrink.core.masks` (a parametrization in the weight's access path); this module chooses
the weights pruning works on, reads and writes masks by weight name, and reports density.

Prunable weights: the `weight` of every Linear and convolution (transposed ones included) and
the input projection of `nn.MultiheadAttention` (`in_proj_weight`, or `q/k/v_proj_weight` when
key and value dimensions differ; its `out_proj` is a Linear). Biases, normalization and
embeddings are left alone, as in the papers we reproduce. A weight shared by several modules
(tied weights) is one prunable weight, named where it first appears. Layers already converted
to integers count in reports (their zeros are permanent) but take no new mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.core import masks
from netshrink.core.patterns import any_match, check_patterns
from netshrink.errors import NetshrinkError

_CONV = nn.modules.conv._ConvNd
_ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


def _weight_attrs(module: nn.Module) -> tuple[str, ...]:
    """The attributes of `module` that hold prunable float weights."""
    if isinstance(module, nn.Linear | _CONV):
        return ("weight",)
    if isinstance(module, nn.MultiheadAttention):
        return tuple(a for a in _ATTENTION_WEIGHTS if getattr(module, a, None) is not None)
    return ()


def _integer_attrs(module: nn.Module) -> tuple[str, ...]:
    """Integer layers declare the weights they took over (`netshrink_weights`)."""
    return tuple(getattr(type(module), "netshrink_weights", ()))


def _join(module_name: str, attr: str) -> str:
    return f"{module_name}.{attr}" if module_name else attr


def _weights(model: nn.Module, kinds) -> Iterator[tuple[str, nn.Module, str]]:
    """(name, module, attribute) of each weight `kinds(module)` lists, shared ones once."""
    seen: set[int] = set()
    for module_name, module in model.named_modules(remove_duplicate=False):
        for attr in kinds(module):
            tensor = masks.stored(module, attr)
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            yield _join(module_name, attr), module, attr


def prunable(model: nn.Module, skip: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """{weight name: weight as the forward pass reads it} of the prunable weights.

    skip: layer name patterns left out (netshrink.core.patterns), checked to match a layer.
    """
    skip = tuple(skip)
    found = {name: (module, attr) for name, module, attr in _weights(model, _weight_attrs)}
    check_patterns(skip, found, "skip")
    return {name: getattr(module, attr) for name, (module, attr) in found.items()
            if not any_match(name, skip)}


def integer_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """{weight name: integer weight} of the layers already converted to integers."""
    return {name: getattr(module, attr) for name, module, attr in _weights(model, _integer_attrs)}


class Mask(Mapping):
    """Which weights are kept: {parameter name: bool tensor of the weight's shape}.

    `collapsed` names the layers left with no weight at all (see `prune_`'s allow_collapse).
    """

    def __init__(self, keep: Mapping[str, torch.Tensor], collapsed: tuple[str, ...] = ()):
        self._keep = {name: torch.as_tensor(t).bool() for name, t in keep.items()}
        self.collapsed = tuple(collapsed)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._keep[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keep)

    def __len__(self) -> int:
        return len(self._keep)

    def __repr__(self) -> str:
        return f"Mask({len(self)} layers, density={self.density():.4f})"

    def kept(self) -> int:
        return sum(int(t.sum()) for t in self._keep.values())

    def size(self) -> int:
        return sum(t.numel() for t in self._keep.values())

    def density(self) -> float:
        """Fraction of the masked weights kept."""
        return self.kept() / max(1, self.size())

    def layer_density(self) -> dict[str, float]:
        return {name: float(t.float().mean()) for name, t in self._keep.items()}

    def shuffled(self, generator: torch.Generator | None = None) -> Mask:
        """The same number of kept weights in each layer, at random places (a control)."""
        out = {}
        for name, t in self._keep.items():
            flat = t.flatten().cpu()
            out[name] = flat[torch.randperm(flat.numel(), generator=generator)].view_as(t)
        return Mask(out)

    def is_subset_of(self, other: Mapping[str, torch.Tensor]) -> bool:
        """True when every weight kept here is kept in `other` too."""
        return all(not bool((t & ~other[name].to(t.device).bool()).any())
                   for name, t in self._keep.items() if name in other)


def _locate(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(module_name) if module_name else model
    except AttributeError:
        module = None
    if module is None or not (attr in module._parameters or
                              parametrize.is_parametrized(module, attr)):
        raise NetshrinkError(f"the mask names {name!r}, which is not a weight of the model")
    return module, attr


def apply_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
    """Install `mask` on `model` (replacing any mask there); pruned weights then read zero.

    On a layer already converted to integers the mask is only recorded (`weight_mask`): its
    weight is frozen, and must already be zero wherever the mask prunes.
    """
    located = {name: _locate(model, name) for name in mask}  # every name checked first
    for name, (module, attr) in located.items():
        keep = torch.as_tensor(mask[name]).bool()
        if attr in _integer_attrs(module):
            masks.set_fixed_mask(module, keep, name)
        else:
            masks.install(model, module, attr, keep)


def _masked(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, torch.Tensor]]:
    """(name, module, attribute, keep) of every mask, float or integer, shared ones once."""
    seen: set[int] = set()
    for name, module, attr in masks.masked(model):
        tensor = masks.stored(module, attr)
        if id(tensor) not in seen:
            seen.add(id(tensor))
            yield name, module, attr, masks.mask_of(module, attr)
    for name, module, attr in _weights(model, _integer_attrs):
        keep = masks.fixed_mask(module)
        if keep is not None:
            yield name, module, attr, keep


def masked_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """{name: weight as read} of every weight that carries a mask (shared ones once)."""
    return {name: getattr(module, attr) for name, module, attr, _ in _masked(model)}


def current_mask(model: nn.Module) -> Mask:
    """The mask installed on `model`, integer layers' included (empty when none is)."""
    return Mask({name: keep.cpu() for name, _, _, keep in _masked(model)})


def squash_(model: nn.Module) -> nn.Module:
    """Make the pruning permanent: plain weights holding the zeros, no masks left."""
    for _, module, attr in list(masks.masked(model)):
        masks.remove(module, attr)
    for module in model.modules():
        module._buffers.pop("weight_mask", None)
    return model


def mask_zeros_(model: nn.Module, skip: Iterable[str] = ()) -> Mask:
    """Mask exactly the zeros of the prunable weights (e.g. of a model pruned elsewhere), so
    further training keeps them."""
    mask = Mask({name: w.detach() != 0 for name, w in prunable(model, skip).items()})
    apply_mask(model, mask)
    return mask


# --- files ------------------------------------------------------------------------------------

TRANSFORM_KIND = "prune-mask"


def transform_entry(model: nn.Module) -> dict | None:
    """What a file records of the masks: which weights are masked (the mask is their zeros)."""
    names = sorted(current_mask(model))
    return {"kind": TRANSFORM_KIND, "parameters": names} if names else None


def check_entry(entry: dict) -> None:
    """The shape of a prune-mask entry read from a file: a list of weight names."""
    names = entry.get("parameters", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise NetshrinkError("'parameters' must be a list of weight names")


def replay_masks(model: nn.Module, entry: dict, stored: Mapping[str, torch.Tensor]) -> None:
    """After a file's weights are loaded: install the listed masks (those the file `stored`
    by their bits; the others are the weights' non-zeros, as files before format 3 hold)."""
    names = entry.get("parameters", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise NetshrinkError("corrupt prune-mask entry: 'parameters' must be a list of names")
    weights = {n: _locate_weight(model, n) for n in names}
    apply_mask(model, {n: stored[n] if n in stored else w.detach() != 0
                       for n, w in weights.items()})


def _locate_weight(model: nn.Module, name: str) -> torch.Tensor:
    try:
        module, attr = _locate(model, name)
    except NetshrinkError:
        raise NetshrinkError(f"the file masks {name!r}, absent from the model") from None
    return getattr(module, attr)


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerDensity:
    """One weight: its size, how many entries pruning kept, how many are non-zero, whether
    it is masked. Kept is the mask's count where there is a mask (an integer weight kept by
    the mask but rounded to 0 is kept), else the non-zeros."""

    name: str
    shape: tuple[int, ...]
    size: int
    kept: int
    nonzero: int
    masked: bool

    @property
    def density(self) -> float:
        return self.kept / max(1, self.size)

    def to_dict(self) -> dict:
        return {**asdict(self), "density": self.density}


def report(model: nn.Module, skip: Iterable[str] = ()) -> list[LayerDensity]:
    """Per-layer density of the prunable weights, the masked ones and the integer ones."""
    kept = {name: int(keep.sum()) for name, _, _, keep in _masked(model)}
    weights = {**prunable(model, skip), **masked_parameters(model), **integer_weights(model)}
    rows = []
    for name, w in weights.items():
        nonzero = int(torch.count_nonzero(w))
        rows.append(LayerDensity(name, tuple(w.shape), w.numel(), kept.get(name, nonzero),
                                 nonzero, name in kept))
    return rows


def density(model: nn.Module, skip: Iterable[str] = ()) -> float:
    """Fraction of the prunable (masked, integer) weights that pruning kept."""
    rows = report(model, skip)
    if not rows:
        raise NetshrinkError("the model has no prunable weights (Linear, convolution or "
                             "attention projections)")
    return sum(r.kept for r in rows) / sum(r.size for r in rows)


def format_report(rows: list[LayerDensity]) -> str:
    """A plain-text table of `report(model)`."""
    width = max([5, *(len(r.name) for r in rows)])
    lines = [f"{'layer':{width}s} {'shape':>18s} {'weights':>10s} {'kept':>10s} density"]
    for r in rows:
        lines.append(f"{r.name:{width}s} {r.shape!s:>18s} {r.size:>10,d} {r.kept:>10,d} "
                     f"{r.density:7.2%}{'' if r.masked else ' (no mask)'}")
    size, kept = sum(r.size for r in rows), sum(r.kept for r in rows)
    lines.append(f"{'total':{width}s} {'':>18s} {size:>10,d} {kept:>10,d} "
                 f"{kept / max(1, size):7.2%}")
    return "\n".join(lines)
