"""From scores to a mask: keep exactly the right number of the highest-scoring weights.

Weights are grouped into units that are ranked together: one global unit (all weights not
overridden) or one unit per layer (layerwise), plus one unit per overridden layer. Each unit
keeps n - round(sparsity * n) of its weights; weights already pruned are never revived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from netshrink.errors import NetshrinkError


@dataclass(frozen=True)
class Unit:
    """Weights ranked together toward one target sparsity."""

    names: tuple[str, ...]
    sparsity: float


def pruned_count(sparsity: float, size: int) -> int:
    """round(sparsity * size), halves rounded up, so the kept count is exact and predictable."""
    return min(size, math.floor(sparsity * size + 0.5))


def units_for(names: list[str], sparsity: float, scope: str,
              overrides: dict[str, float]) -> list[Unit]:
    rest = [n for n in names if n not in overrides]
    units = [Unit((n,), s) for n, s in overrides.items()]
    if scope == "global" and rest:
        units.append(Unit(tuple(rest), sparsity))
    else:
        units.extend(Unit((n,), sparsity) for n in rest)
    return units


def unit_density(unit: Unit, keep: dict[str, torch.Tensor]) -> float:
    size = sum(keep[n].numel() for n in unit.names)
    return sum(int(keep[n].sum()) for n in unit.names) / size


def check_shrinks(units: list[Unit], keep: dict[str, torch.Tensor]) -> None:
    """Refuse a target that would need pruned weights back (masks only shrink)."""
    for unit in units:
        size = sum(keep[n].numel() for n in unit.names)
        alive = sum(int(keep[n].sum()) for n in unit.names)
        if size - pruned_count(unit.sparsity, size) > alive:
            what = unit.names[0] if len(unit.names) == 1 else "the weights ranked globally"
            raise NetshrinkError(
                f"{what} already have sparsity {1 - alive / size:.4f}, more than the requested "
                f"{unit.sparsity:.4f}; masks only shrink (ask for a sparsity >= "
                f"{1 - alive / size:.4f})"
            )


def select(scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor],
           units: list[Unit]) -> dict[str, torch.Tensor]:
    """The new keep-masks: in each unit, the top-k alive weights by score (k exact)."""
    new = {}
    for unit in units:
        flat = torch.cat([scores[n].detach().flatten().double().cpu() for n in unit.names])
        alive = torch.cat([keep[n].flatten().cpu() for n in unit.names])
        if torch.isnan(flat[alive]).any():
            raise NetshrinkError(f"the scores of {', '.join(unit.names)} contain NaN")
        k = flat.numel() - pruned_count(unit.sparsity, flat.numel())
        flat = flat.masked_fill(~alive, -math.inf)
        chosen = torch.zeros(flat.numel(), dtype=torch.bool)
        if k > 0:
            chosen[torch.topk(flat, k, sorted=False).indices] = True
        chosen &= alive
        start = 0
        for n in unit.names:
            size = keep[n].numel()
            new[n] = chosen[start:start + size].view(keep[n].shape)
            start += size
    return new


def collapsed(keep: dict[str, torch.Tensor]) -> list[str]:
    """Layers left with no weight."""
    return [n for n, t in keep.items() if not bool(t.any())]


def largest_safe_compression(scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor],
                             units: list[Unit], overridden: set[str]) -> float:
    """About the largest overall compression at which, with these scores, no layer is emptied.

    Overridden layers keep their own targets (or one weight, if those empty them). The other
    weights are pushed as far as they go: in a global unit a layer survives while its best
    alive weight is among the kept ones; layerwise units share one density, so the smallest
    layer decides (it must keep one weight).
    """
    total = sum(t.numel() for t in keep.values())
    needed = 0
    layerwise = [u for u in units if len(u.names) == 1 and u.names[0] not in overridden]
    if layerwise:
        density = max(1 / keep[u.names[0]].numel() for u in layerwise)
        needed += sum(math.ceil(density * keep[u.names[0]].numel()) for u in layerwise)
    for unit in units:
        if unit in layerwise:
            continue
        if len(unit.names) == 1:
            size = keep[unit.names[0]].numel()
            needed += max(1, size - pruned_count(unit.sparsity, size))
            continue
        flat = torch.cat([scores[n].detach().flatten().double().cpu().masked_fill(
            ~keep[n].flatten().cpu(), -math.inf) for n in unit.names])
        worst = 1
        for n in unit.names:
            alive = scores[n].detach().flatten().double().cpu()[keep[n].flatten().cpu()]
            if alive.numel():
                worst = max(worst, int((flat > alive.max()).sum()) + 1)
        needed += worst
    return total / max(1, needed)
