"""Masks in the weight's access path: a pruned weight reads as zero wherever it is read.

A mask is a parametrization (`torch.nn.utils.parametrize`): `module.weight` is computed as
`original * mask` on every read, so every code path sees the masked value: the module's own
forward, `nn.MultiheadAttention` reading `out_proj.weight` without calling its forward, a deep
copy, a module swap that carries the parametrization (`netshrink.core.swap`), any optimizer
(momentum and Adam moments move `original`, never what is read) and a hand-written update (the
gradient of a pruned entry is exactly zero). netshrink's first version zeroed weights in place
and guarded them with five hooks; it broke each time a module read a weight without calling
its owner's forward or a swap built a new module.

The state_dict keeps the plain model's keys: a hook writes `weight` (the masked value) in place
of `parametrizations.weight.original`, and loading a plain state dict into a masked model fills
`original` (so rewinding a lottery ticket to dense initial weights works; they read masked).
The mask is a non-persistent buffer; files record which weights are masked, and the mask is
the zeros the file holds. A weight shared by several modules (tied weights) gets one mask
object on every module that holds it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.errors import NetshrinkError


class WeightMask(nn.Module):
    """The parametrization `weight = original * mask` (mask: 1 kept, 0 pruned)."""

    def __init__(self, keep: torch.Tensor, like: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", keep.to(device=like.device, dtype=like.dtype),
                             persistent=False)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.mask

    def extra_repr(self) -> str:
        kept = int(torch.count_nonzero(self.mask))
        return f"kept={kept}/{self.mask.numel()}"


def _own_mask(module: nn.Module, attr: str) -> WeightMask | None:
    if not parametrize.is_parametrized(module, attr):
        return None
    for p in module.parametrizations[attr]:
        if isinstance(p, WeightMask):
            return p
    return None


def mask_of(module: nn.Module, attr: str) -> torch.Tensor | None:
    """The keep-mask (bool) of `module.attr`, or None when it carries none."""
    found = _own_mask(module, attr)
    return None if found is None else found.mask.detach().bool()


def stored(module: nn.Module, attr: str) -> torch.Tensor:
    """The tensor that holds `attr`'s values: `original` when masked, else the parameter."""
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original
    return module._parameters[attr]


def storage_name(model: nn.Module, name: str) -> str:
    """The parameter name to hand `torch.func.functional_call` for weight `name`
    (`fc.parametrizations.weight.original` for a masked `fc.weight`)."""
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    if parametrize.is_parametrized(module, attr):
        return f"{module_name}.parametrizations.{attr}.original".lstrip(".")
    return name


def masked(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """(weight name, module, attribute) of every masked weight, each module once."""
    for module_name, module in model.named_modules(remove_duplicate=True):
        if not parametrize.is_parametrized(module):
            continue
        for attr in module.parametrizations:
            if _own_mask(module, attr) is not None:
                yield (f"{module_name}.{attr}" if module_name else attr), module, attr


def computed(model: nn.Module) -> list[str]:
    """Names of the weights computed by a parametrization other than a mask (shared weights,
    netshrink.pack): methods that rewrite weights in place must refuse them."""
    out = []
    for module_name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            out += [f"{module_name}.{attr}" if module_name else attr
                    for attr in module.parametrizations
                    if any(not isinstance(p, WeightMask) for p in module.parametrizations[attr])]
    return out


def fixed_mask(module: nn.Module) -> torch.Tensor | None:
    """The mask an integer layer took over (its `weight_mask` buffer): its weight is frozen, so
    the zeros stay without a parametrization; the mask tells pruned zeros from rounded ones."""
    keep = module._buffers.get("weight_mask")
    return None if keep is None else keep.bool()


def set_fixed_mask(module: nn.Module, keep: torch.Tensor, name: str = "weight") -> None:
    """Record the mask of an integer layer's frozen weight (refused if it prunes non-zeros)."""
    weight = module.weight
    if tuple(keep.shape) != tuple(weight.shape):
        raise NetshrinkError(f"mask of shape {tuple(keep.shape)} does not fit weight {name} of "
                             f"shape {tuple(weight.shape)}")
    if bool((weight.detach()[~keep.to(weight.device)] != 0).any()):
        raise NetshrinkError(f"{name} is an integer weight with non-zeros where the mask "
                             "prunes; integer weights cannot be pruned (prune before quantizing)")
    module.register_buffer("weight_mask", keep.to(weight.device), persistent=False)


def all_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{state_dict key: keep-mask} of every masked weight, float (parametrized) or integer."""
    out = {name: mask_of(module, attr) for name, module, attr in masked(model)}
    for module_name, module in model.named_modules():
        keep = fixed_mask(module)
        if keep is not None:
            out[f"{module_name}.weight" if module_name else "weight"] = keep
    return out


def owners(model: nn.Module, module: nn.Module, attr: str) -> list[tuple[nn.Module, str]]:
    """Every (module, attribute) of `model` holding the same tensor as `module.attr`."""
    target = stored(module, attr)
    out = []
    for other in model.modules():
        if isinstance(other, parametrize.ParametrizationList):
            continue  # it holds `original` for the module it parametrizes, listed below
        names = list(other._parameters)
        if parametrize.is_parametrized(other):
            names += list(other.parametrizations)
        out += [(other, name) for name in names if _holds(other, name, target)]
    return out or [(module, attr)]


def _holds(module: nn.Module, name: str, target: torch.Tensor) -> bool:
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original is target
    return module._parameters.get(name) is target


def install(model: nn.Module, module: nn.Module, attr: str, keep: torch.Tensor) -> None:
    """Mask `module.attr` (and every module tied to it) with `keep`, replacing a mask there."""
    if parametrize.is_parametrized(module, attr) and _own_mask(module, attr) is None:
        owner = parametrize.type_before_parametrizations(module).__name__
        kinds = ", ".join(type(p).__name__ for p in module.parametrizations[attr])
        raise NetshrinkError(f"{owner}.{attr} is computed by {kinds} (weights shared by "
                             "netshrink.pack.share_); prune before sharing")
    weight = stored(module, attr)
    keep = torch.as_tensor(keep).bool()
    if tuple(keep.shape) != tuple(weight.shape):
        raise NetshrinkError(f"mask of shape {tuple(keep.shape)} does not fit weight of shape "
                             f"{tuple(weight.shape)}")
    existing = _own_mask(module, attr)
    if existing is not None:
        existing.mask.copy_(keep.to(existing.mask.device, existing.mask.dtype))
        shared = existing
    else:
        shared = WeightMask(keep, weight)
    for owner, name in owners(model, module, attr):
        if _own_mask(owner, name) is None:
            _attach(owner, name, shared)
    with torch.no_grad():  # pruned entries of the stored values are zero too (tidy, and squash)
        stored(module, attr).mul_(shared.mask)


def _attach(module: nn.Module, attr: str, mask: WeightMask) -> None:
    param = module._parameters.get(attr)
    if param is not None and not param.is_floating_point():
        raise NetshrinkError(f"{type(module).__name__}.{attr} holds {param.dtype} values; only "
                             "float weights take a mask (prune before quantizing)")
    first = not parametrize.is_parametrized(module)
    parametrize.register_parametrization(module, attr, mask, unsafe=True)
    if first:
        module.register_state_dict_post_hook(_plain_keys)
        module.register_load_state_dict_pre_hook(_load_plain_keys)


def remove(module: nn.Module, attr: str) -> None:
    """Make `module.attr`'s mask permanent: a plain parameter holding the zeros."""
    found = _own_mask(module, attr)
    if found is None:
        return
    with torch.no_grad():
        stored(module, attr).mul_(found.mask)
    own_class(module)
    # leave_parametrized=False gives back the original Parameter object, so ties survive
    parametrize.remove_parametrizations(module, attr, leave_parametrized=False)


def own_class(module: nn.Module) -> None:
    """Give a parametrized module a class of its own, to call before removing one of its
    parametrizations: a deep copy shares torch's generated `Parametrized...` class with the
    original, and removing a parametrization deletes the weight's property from that class,
    which broke the original when a copy was squashed (or shared, netshrink.pack)."""
    cls = module.__class__
    if parametrize.is_parametrized(module):
        namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__",
                                                                         "__weakref__")}
        module.__class__ = type(cls.__name__, cls.__bases__, namespace)


def _plain_keys(module: nn.Module, state: dict, prefix: str, local_metadata) -> None:
    """state_dict hook: `attr` (the masked value) instead of `parametrizations.attr.*`."""
    if not parametrize.is_parametrized(module):
        return
    for attr in module.parametrizations:
        key = f"{prefix}parametrizations.{attr}.original"
        if key in state and _own_mask(module, attr) is not None:
            state[prefix + attr] = state.pop(key) * _own_mask(module, attr).mask


def _load_plain_keys(module: nn.Module, state: dict, prefix: str, local_metadata, strict,
                     missing_keys, unexpected_keys, error_msgs) -> None:
    """load_state_dict hook: a plain `attr` entry fills `parametrizations.attr.original`."""
    if not parametrize.is_parametrized(module):
        return
    for attr in module.parametrizations:
        if prefix + attr in state and _own_mask(module, attr) is not None:
            state[f"{prefix}parametrizations.{attr}.original"] = state.pop(prefix + attr)
