"""How important each channel, head or neuron of a group is (higher = keep).

- "l1" / "l2": the norm of the weights that make the unit (the producers' rows: a filter, a
  neuron's input weights, a head's query/key/value rows), as Li et al. 2017 rank filters;
- "group_l1" / "group_l2": the norm over every weight the unit touches: the producers' rows,
  the consumers' input columns (of a grouped convolution: the column of the unit's group's
  filters), BatchNorm/LayerNorm scales and depthwise filters (the group
  magnitude of Torch-Pruning's MagnitudeImportance; Fang et al. 2023, DepGraph), so a channel
  whose readers ignore it ranks low even when its filter is large;
- "taylor": first-order Taylor (Molchanov et al. 2019): (sum of gradient x weight over the
  unit's parameters)^2, summed over batches of training data; the parameters are the
  BatchNorm's scale and shift where the group has one, else the producers' weights and biases;
- "bn_scale": |gamma| of the group's BatchNorms (network slimming, Liu et al. 2017; train with
  netshrink.prune.slimming.BatchNormSparsity first); a group without BatchNorm is not ranked;
- "random": uniform draws (a control).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from netshrink.core import masks
from netshrink.core.swap import base_type, get_module
from netshrink.errors import NetshrinkError
from netshrink.prune.graph import Group, Member

CRITERIA = ("l1", "l2", "group_l1", "group_l2", "taylor", "bn_scale", "random")
NEEDS_DATA = frozenset({"taylor"})
TAYLOR_EXAMPLES = 1024  # training examples the Taylor scores average over
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_WEIGHTED_ROLES = ("out", "in", "norm", "depthwise")  # members whose weights a group norm sums


def _rows(model: nn.Module, member: Member, units: int, attr: str = "weight",
          grad: bool = False) -> torch.Tensor | None:
    """[units, ...] slices of a member's tensor that belong to each unit."""
    module = get_module(model, member.path)
    if grad:  # the gradient lives on the stored tensor (`original` when masked)
        masked = attr in getattr(module, "parametrizations", {})
        tensor = masks.stored(module, attr) if masked else getattr(module, attr, None)
        tensor = None if tensor is None else tensor.grad
    else:  # the value the forward reads (masked)
        tensor = getattr(module, attr, None)
    if tensor is None:
        return None
    dim = 1 if member.role == "in" or (member.role == "out" and
                                       base_type(module) is nn.Embedding) else 0
    if member.role == "in" and base_type(module) in _CONV and module.groups > 1 and \
            tensor.dim() > 2:
        tensor, dim = _by_input_channel(tensor, module.groups), 0
    idx = member.positions(units).to(tensor.device)
    picked = tensor.detach().index_select(dim, idx.flatten())
    return picked.movedim(dim, 0).reshape(units, -1)


def _by_input_channel(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's weight [out, in / groups, ...] as [in, ...]: row c holds every
    weight that reads input channel c (its column in the filters of c's group)."""
    runs = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
    return runs.movedim(2, 1).reshape(groups * weight.shape[1], -1)


def _norm(model: nn.Module, members: list[Member], units: int, p: int) -> torch.Tensor:
    """The p-norm, per unit, of the members' slices that belong to it."""
    total = torch.zeros(units)
    for member in members:
        rows = _rows(model, member, units)
        if rows is not None:
            total += rows.abs().sum(1).cpu() if p == 1 else rows.pow(2).sum(1).cpu()
    return total if p == 1 else total.sqrt()


def _norms(model: nn.Module, group: Group) -> list[Member]:
    return [m for m in group.members if m.role == "norm"
            and base_type(get_module(model, m.path)) in _BATCHNORM]


def bn_scale(model: nn.Module, group: Group) -> torch.Tensor | None:
    """Summed |gamma| of the group's BatchNorms (None: it has none)."""
    norms = [m for m in _norms(model, group) if get_module(model, m.path).weight is not None]
    if not norms:
        return None
    return sum(_rows(model, m, group.size).abs().sum(1).cpu() for m in norms)


def _taylor_parameters(model: nn.Module, group: Group) -> list[tuple[Member, str]]:
    norms = _norms(model, group)
    if norms:
        return [(m, a) for m in norms for a in ("weight", "bias")]
    return [(m, a) for m in group.producers for a in ("weight", "bias")]


def taylor(model: nn.Module, groups: list[Group], batches: Iterator, loss_of: Callable
           ) -> dict[str, torch.Tensor]:
    """First-order Taylor importance of every group's units, over `batches`."""
    scores = {g.name: torch.zeros(g.size) for g in groups}
    was_training = model.training
    model.eval()  # BatchNorm statistics and dropout as at inference
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_of(model, batch).backward()
            for g in groups:
                unit = torch.zeros(g.size)
                for member, attr in _taylor_parameters(model, g):
                    w = _rows(model, member, g.size, attr)
                    dw = _rows(model, member, g.size, attr, grad=True)
                    if w is not None and dw is not None:
                        unit += (w * dw).sum(1).cpu()
                scores[g.name] += unit.pow(2)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return scores


def scores(model: nn.Module, groups: list[Group], criterion: str, generator: torch.Generator,
           batches: Callable[[], Iterator] | None = None, loss_of: Callable | None = None
           ) -> dict[str, torch.Tensor]:
    """{group name: importance per unit}; a group the criterion cannot rank is left out."""
    if criterion not in CRITERIA:
        raise NetshrinkError(f"criterion={criterion!r} must be one of {', '.join(CRITERIA)}")
    if criterion == "taylor":
        if batches is None:
            raise NetshrinkError("criterion 'taylor' needs data: pass data=(inputs, labels) "
                                 "or a Splits of training examples")
        return taylor(model, groups, batches(), loss_of)
    out = {}
    with torch.no_grad():
        for g in groups:
            if criterion == "random":
                out[g.name] = torch.rand(g.size, generator=generator)
            elif criterion == "bn_scale":
                found = bn_scale(model, g)
                if found is not None:
                    out[g.name] = found
            else:  # l1, l2: the producers' rows; group_l1, group_l2: every weighted member
                members = ([m for m in g.members if m.role in _WEIGHTED_ROLES]
                           if criterion.startswith("group_") else g.producers)
                out[g.name] = _norm(model, members, g.size, 1 if criterion.endswith("l1") else 2)
    return out
