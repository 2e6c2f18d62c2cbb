"""Replacing a submodule so that what was done to it travels along (its masks, above all).

Every method that swaps modules (quantization-aware training, conversion to integer layers,
attention decomposition, structured pruning) goes through `replace_module`. A mask on a weight
of the old module is installed on the new module's weight of the same name and shape; a new
module whose weight is frozen integers must hold exact zeros where the mask prunes; anything
else is refused by name instead of silently dropping the mask.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.core import masks
from netshrink.errors import NetshrinkError


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted `path` ("" is the model itself)."""
    return model.get_submodule(path) if path else model


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put `module` at dotted `path` (no mask bookkeeping; see replace_module)."""
    parent, _, name = path.rpartition(".")
    setattr(get_module(model, parent), name, module)


def swap_everywhere(model: nn.Module, path: str, new: nn.Module) -> None:
    """Put `new` at `path` and at every other path where the module now at `path` sits (one
    module registered twice stays one module)."""
    old = get_module(model, path)
    for where in [p for p, m in model.named_modules(remove_duplicate=False) if m is old] \
            or [path]:
        set_module(model, where, new)


def base_type(module: nn.Module) -> type:
    """The module's class before any parametrization was registered on it."""
    return parametrize.type_before_parametrizations(module)


def module_masks(module: nn.Module) -> dict[str, torch.Tensor]:
    """{attribute: keep-mask} of the masks carried directly by `module`."""
    if not parametrize.is_parametrized(module):
        return {}
    out = {}
    for attr in module.parametrizations:
        keep = masks.mask_of(module, attr)
        if keep is not None:
            out[attr] = keep
    return out


def replace_module(model: nn.Module, path: str, new: nn.Module,
                   carry: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Swap the submodule at `path` for `new`, carrying the old module's masks. A module
    registered at several paths (nn.Sequential(shared, act, shared)) is swapped at all of
    them, so that it stays one module.

    carry: {attribute of `new`: keep-mask} when the masks do not map one to one by name (a
    split attention projection); None carries each mask to the attribute of the same name.
    """
    old = get_module(model, path)
    wanted = module_masks(old) if carry is None else dict(carry)
    for attr, keep in wanted.items():
        _check_carry(path, new, attr, keep)
    swap_everywhere(model, path, new)
    for attr, keep in wanted.items():
        owner, name = _owner(new, attr)
        if getattr(owner, name).is_floating_point():
            masks.install(model, owner, name, keep)
        else:  # frozen integers: the zeros stay by themselves; the mask is recorded
            masks.set_fixed_mask(owner, keep, f"{path}.{attr}")
    return new


def _owner(module: nn.Module, attr: str) -> tuple[nn.Module, str]:
    """(submodule, attribute) for a possibly dotted attribute path such as "q_proj.weight"."""
    prefix, _, name = attr.rpartition(".")
    try:
        return get_module(module, prefix), name
    except AttributeError:
        return module, attr


def _check_carry(path: str, new: nn.Module, attr: str, keep: torch.Tensor) -> None:
    """Refuse a mask that `new` cannot hold (checked before anything changes)."""
    owner, name = _owner(new, attr)
    target = getattr(owner, name, None)
    where = f"{path}.{attr}" if path else attr
    if not isinstance(target, torch.Tensor) or (not target.is_floating_point()
                                                and name != "weight"):
        raise NetshrinkError(
            f"cannot carry the mask of {where} into {type(new).__name__}, which has no {attr!r}; "
            "squash the mask first (netshrink.prune.squash_) to keep its zeros as plain weights")
    if tuple(target.shape) != tuple(keep.shape):
        raise NetshrinkError(
            f"cannot carry the mask of {where} ({tuple(keep.shape)}) into "
            f"{type(new).__name__}.{attr} of shape {tuple(target.shape)}")
    if not target.is_floating_point() and bool((target.detach()[~keep.to(target.device)] != 0)
                                               .any()):
        raise NetshrinkError(f"{type(new).__name__}.{attr} holds non-zero integers where the "
                             f"mask of {where} prunes")
