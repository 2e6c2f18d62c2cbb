"""`prune_(model, method, data, sparsity=...)`: score the weights, keep the best, install masks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.data import Splits, tensors_of
from netshrink.errors import NetshrinkError
from netshrink.prune import scores as scores_mod
from netshrink.prune import select
from netshrink.prune.mask import (
    LayerFilter,
    Mask,
    apply_mask,
    current_mask,
    prunable,
    remember_transform,
)

SCOPES = ("global", "layerwise")


class LayerCollapseError(NetshrinkError):
    """Pruning would empty a layer. `layers` names them; `safe_compression` is about the largest
    compression that avoids it with the same scores."""

    def __init__(self, message: str, layers: tuple[str, ...], safe_compression: float):
        super().__init__(message)
        self.layers, self.safe_compression = layers, safe_compression


def target_sparsity(sparsity: float | None, compression: float | None) -> float:
    """The sparsity asked for, from exactly one of `sparsity` or `compression` (= 1/density)."""
    if (sparsity is None) == (compression is None):
        raise NetshrinkError("give exactly one of sparsity (fraction removed, in [0, 1)) or "
                             "compression (1 / density, >= 1)")
    if compression is not None:
        if not isinstance(compression, int | float) or not compression >= 1 or math.isinf(
                compression):
            raise NetshrinkError(f"compression={compression!r} must be a finite number >= 1 "
                                 "(1 keeps every weight, 10 keeps a tenth)")
        return 1.0 - 1.0 / float(compression)
    if not isinstance(sparsity, int | float) or not 0 <= sparsity < 1:
        raise NetshrinkError(f"sparsity={sparsity!r} must be in [0, 1): the fraction of weights "
                             "removed (0.9 keeps a tenth)")
    return float(sparsity)


def _overrides(layer_sparsity: Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    out = {}
    for key, value in (layer_sparsity or {}).items():
        name = key if key in names else f"{key}.weight"
        if name not in names:
            raise NetshrinkError(f"layer_sparsity names {key!r}, not a prunable layer; choose "
                                 f"from {', '.join(names)}")
        out[name] = target_sparsity(value, None)
    return out


def _examples(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Splits):
        data = data.train
    return tensors_of(data)


def _input_shape(model: nn.Module, inputs: torch.Tensor | None, given) -> tuple | None:
    if given is not None:
        return tuple(int(s) for s in given)
    if inputs is not None:
        return tuple(inputs.shape[1:])
    spec = getattr(model, "netshrink_spec", None) or {}
    shape = spec.get("args", {}).get("input_shape")
    return tuple(shape) if shape else None


def prune_(
    model: nn.Module,
    method: str | scores_mod.Score = "magnitude",
    data=None,
    *,
    sparsity: float | None = None,
    compression: float | None = None,
    scope: str = "global",
    layer_sparsity: Mapping[str, float] | None = None,
    filter: LayerFilter | None = None,
    allow_collapse: bool = False,
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    input_shape: tuple[int, ...] | None = None,
    **options,
) -> Mask:
    """Prune `model` in place and return the mask now installed on it.

    method: "random", "magnitude", "obd", "taylor", "snip", "grasp", "synflow" or a Score;
        `options` go to its constructor (e.g. iterations=100 for synflow, hessian="exact").
    data: training examples for the methods that need them (a Splits, a Dataset or an
        (inputs, labels) tuple).
    sparsity / compression: the target for the prunable weights (absolute: weights already
        pruned count; masks only shrink). Exactly round(sparsity * n) weights are removed.
    scope: "global" ranks all prunable weights together, "layerwise" each layer on its own.
    layer_sparsity: {layer: sparsity} for layers pruned at their own rate (layerwise).
    filter: fn(module_name, module) -> bool choosing the layers (default: Linear and Conv).
    allow_collapse: return a mask that empties a layer (its names in `mask.collapsed`) instead
        of refusing with an error naming the layer and the largest safe compression.
    """
    score = scores_mod.make(method, **options)
    target = target_sparsity(sparsity, compression)
    if scope not in SCOPES:
        raise NetshrinkError(f"scope={scope!r} must be one of {', '.join(SCOPES)}")
    params = prunable(model, filter)
    if not params:
        raise NetshrinkError(f"the model ({type(model).__name__}) has nothing to prune: no "
                             "Linear or Conv weight (or none that the filter selects)")
    names = list(params)
    overrides = _overrides(layer_sparsity, names)
    inputs = targets = None
    if score.needs_data:
        if data is None:
            raise NetshrinkError(f"method {score.name!r} needs data: pass data=splits (or a "
                                 "Dataset, or an (inputs, labels) tuple of training examples)")
        inputs, targets = _examples(data)
    installed = current_mask(model)
    keep = {n: installed[n].clone() if n in installed else torch.ones(p.shape, dtype=torch.bool)
            for n, p in params.items()}
    units = select.units_for(names, target, scope, overrides)
    select.check_shrinks(units, keep)
    generator = torch.Generator().manual_seed(scores_mod.scoring_seed(seed))
    shape = _input_shape(model, inputs, input_shape)
    start = {u: select.unit_density(u, keep) for u in units}
    last_scores: dict[str, torch.Tensor] = {}
    scored_keep = keep
    for step in range(1, score.iterations + 1):
        step_units = units if step == score.iterations else [
            select.Unit(u.names, 1 - start[u] * ((1 - u.sparsity) / start[u]) ** (
                step / score.iterations)) if start[u] > 0 else u for u in units]
        weights = {n: p.detach() * keep[n].to(p.device, p.dtype) for n, p in params.items()}
        ctx = scores_mod.Context(model, weights, inputs, targets, loss_fn, generator, shape)
        with scores_mod.scoring_mode(model, score.train_mode, seed):
            last_scores = {n: s.detach() for n, s in score.scores(ctx).items()}
        scored_keep, keep = keep, select.select(last_scores, keep, step_units)
    emptied = select.collapsed(keep)
    if emptied and not allow_collapse:
        safe = select.largest_safe_compression(last_scores, scored_keep, units, set(overrides))
        asked = 1 / max(1e-12, 1 - target)
        raise LayerCollapseError(
            f"{score.name} at compression {asked:.4g} (sparsity {target:.6g}) would empty "
            f"{', '.join(emptied)} (layer collapse: a layer left with no weight); the largest "
            f"compression that avoids it is about {safe:.4g}. Ask for less, or pass "
            "allow_collapse=True to record it instead",
            tuple(emptied), safe,
        )
    apply_mask(model, keep)
    remember_transform(model)
    return Mask(keep, tuple(emptied))


def score_weights(
    model: nn.Module,
    method: str | scores_mod.Score = "magnitude",
    data=None,
    *,
    filter: LayerFilter | None = None,
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    input_shape: tuple[int, ...] | None = None,
    **options,
) -> dict[str, torch.Tensor]:
    """One scoring pass of `method` on the model's current (masked) weights, without pruning:
    {weight name: scores} (higher = more important). For studies that rank weights once."""
    score = scores_mod.make(method, **options)
    params = prunable(model, filter)
    if not params:
        raise NetshrinkError("the model has nothing to prune: no Linear or Conv weight")
    inputs = targets = None
    if score.needs_data:
        if data is None:
            raise NetshrinkError(f"method {score.name!r} needs data")
        inputs, targets = _examples(data)
    weights = {n: p.detach() for n, p in params.items()}
    ctx = scores_mod.Context(model, weights, inputs, targets, loss_fn,
                             torch.Generator().manual_seed(scores_mod.scoring_seed(seed)),
                             _input_shape(model, inputs, input_shape))
    with scores_mod.scoring_mode(model, score.train_mode, seed):
        return {n: s.detach() for n, s in score.scores(ctx).items()}
