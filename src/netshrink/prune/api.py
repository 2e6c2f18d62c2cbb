"""`prune_(model, PruneConfig(...), data)`: score the weights, keep the best, install masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from netshrink.core import masks
from netshrink.core.patterns import any_match, check_patterns, last_match
from netshrink.data import Splits, first_inputs, tensors_of
from netshrink.data.inputs import (
    Inputs,
    Shape,
    call,
    check_finite,
    check_shape,
    describe,
    example_shape,
    take,
    to_device,
)
from netshrink.errors import NetshrinkError
from netshrink.prune import scores as scores_mod
from netshrink.prune import select
from netshrink.prune.config import SCOPES, PruneConfig, target_sparsity
from netshrink.prune.mask import (
    Mask,
    apply_mask,
    current_mask,
    integer_weights,
    prunable,
)
from netshrink.prune.structured import StructuredConfig, StructuredResult, prune_structured

__all__ = ["SCOPES", "LayerCollapseError", "PruneConfig", "prune_", "score_weights",
           "target_sparsity"]

# Short-form keywords of prune_ that are PruneConfig fields; any other keyword is a method option.
_FIELDS = ("sparsity", "compression", "scope", "layers", "skip", "allow_collapse", "seed")


class LayerCollapseError(NetshrinkError):
    """Pruning would empty a layer. `layers` names them; `safe_compression` is about the largest
    compression that avoids it with the same scores."""

    def __init__(self, message: str, layers: tuple[str, ...], safe_compression: float):
        super().__init__(message)
        self.layers, self.safe_compression = layers, safe_compression


def _examples(data, model: nn.Module, loss_fn: Callable, method: str
              ) -> tuple[Inputs, torch.Tensor]:
    """(inputs, labels) of the training examples: inputs of any shape (netshrink.data.inputs),
    checked to be finite and to fit the model (one forward pass on two examples), and the
    labels to be within its outputs, so a data-driven score never fails inside torch."""
    if isinstance(data, Splits):
        data = data.train
    inputs, targets = tensors_of(data)
    check_finite(inputs, f"{method}: the data's inputs")
    was_training = model.training
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with torch.no_grad():
            out = call(model.eval(), to_device(take(inputs, slice(0, 2)), device))
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        if isinstance(err, NetshrinkError):
            raise
        raise NetshrinkError(
            f"{method}: the model cannot run on the data's inputs ({describe(inputs)} per "
            f"example): {str(err).splitlines()[0]}; pass the data the model was built for"
        ) from None
    finally:
        model.train(was_training)
    if loss_fn is F.cross_entropy and not isinstance(out, torch.Tensor):
        raise NetshrinkError(
            f"{method}: the model returns a {type(out).__name__}, and the default loss "
            "(cross-entropy) needs one tensor of logits: pass loss_fn=, a function of (the "
            "model's output, labels), e.g. lambda out, y: F.cross_entropy(out[0], y)")
    if loss_fn is F.cross_entropy and out.dim() == 2:
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= out.shape[1]:
            raise NetshrinkError(
                f"{method}: label {low if low < 0 else high} is out of range for the model's "
                f"{out.shape[1]} outputs; the labels must be class indices 0..{out.shape[1] - 1}"
            )
    return inputs, targets


def _input_shape(model: nn.Module, data, given) -> Shape | None:
    """One example's input shape, for data-free scores: `given`, else the data's (only its
    shape is read), else the zoo spec's; None when none of them says."""
    if given is not None:
        return check_shape(given)
    if isinstance(data, Splits):
        return data.input_shape
    if data is not None:
        return example_shape(first_inputs(data, 1))
    spec = getattr(model, "netshrink_spec", None) or {}
    shape = spec.get("args", {}).get("input_shape")
    return tuple(shape) if shape else None


def as_config(config: PruneConfig | str | scores_mod.Score | None, short: dict
              ) -> tuple[PruneConfig, scores_mod.Score]:
    """(PruneConfig, Score) from a config, or from the short form `method, sparsity=...`."""
    if "filter" in short:
        raise NetshrinkError("prune_ takes skip=(layer patterns, ...) instead of filter=")
    if "layer_sparsity" in short:  # the earlier name of `layers`
        short["layers"] = short.pop("layer_sparsity")
    if isinstance(config, PruneConfig):
        if short:
            raise NetshrinkError(f"prune_ got a PruneConfig and keywords {', '.join(short)}; "
                                 "put them in the config")
        return config, scores_mod.make(config.method, **config.options)
    fields = {k: short.pop(k) for k in _FIELDS if k in short}
    fields["layers"] = dict(fields.get("layers") or {})
    fields["skip"] = tuple(fields.get("skip") or ())
    if isinstance(config, scores_mod.Score):
        if short:
            raise NetshrinkError("options go to the Score's constructor, not to prune_")
        return PruneConfig(**fields), config
    resolved = PruneConfig(method=config or "magnitude", options=short, **fields)
    return resolved, scores_mod.make(resolved.method, **resolved.options)


def prune_(
    model: nn.Module,
    config: PruneConfig | StructuredConfig | str | scores_mod.Score | None = "magnitude",
    data: Splits | Dataset | tuple[Inputs, torch.Tensor | None] | None = None,
    *,
    loss_fn: Callable = F.cross_entropy,
    input_shape: tuple[int, ...] | None = None,
    **short: Any,
) -> Mask | StructuredResult:
    """Prune `model` in place and return the mask now installed on it.

    config: a PruneConfig, or a method name (or Score) with the config's fields as keywords
        (the short form: `prune_(model, "magnitude", sparsity=0.9)`; other keywords are the
        method's options, e.g. iterations=100 for synflow).
    data: training examples for the methods that need them (a Splits, a Dataset or an
        (inputs, labels) tuple).
    loss_fn: the loss the data-driven scores differentiate.
    input_shape: one example's shape, for SynFlow on a model not built by netshrink.

    Exactly round(sparsity * n) of the n prunable weights end up removed (per unit: all
    weights ranked globally, or each layer). A layer pruned to nothing (layer collapse) is
    refused with the layer named and the largest safe compression, unless allow_collapse.

    A StructuredConfig removes whole channels, heads and neurons instead and returns a
    StructuredResult (netshrink.prune.structured; `example=` gives the inputs it traces with).
    """
    if isinstance(config, StructuredConfig):
        return prune_structured(model, config, data, loss_fn=loss_fn, input_shape=input_shape,
                                **short)
    config, score = as_config(config, dict(short))
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    leftover = [n for n in integer_weights(model) if not any_match(n, config.skip)]
    if leftover:
        raise NetshrinkError(
            f"cannot prune {', '.join(leftover[:4])}{' ...' if len(leftover) > 4 else ''}: "
            "already converted to integers; prune before quantizing (or during QAT, before "
            "netshrink.quant.convert)")
    params = prunable(model, config.skip)
    if not params:
        raise NetshrinkError(f"the model ({type(model).__name__}) has nothing to prune: no "
                             "Linear, convolution or attention weight (or all skipped)")
    names = list(params)
    check_patterns(config.layers, names, "layers")
    overrides = {n: target_sparsity(last_match(n, config.layers), None) for n in names
                 if last_match(n, config.layers) is not None}
    inputs = targets = None
    if score.needs_data:
        if data is None:
            raise NetshrinkError(f"method {score.name!r} needs data: pass data=splits (or a "
                                 "Dataset, or an (inputs, labels) tuple of training examples)")
        inputs, targets = _examples(data, model, loss_fn, score.name)
    installed = current_mask(model)
    keep = {n: installed[n].clone() if n in installed else torch.ones(p.shape, dtype=torch.bool)
            for n, p in params.items()}
    target = config.target
    units = select.units_for(names, target, config.scope, overrides)
    select.check_shrinks(units, keep)
    generator = torch.Generator().manual_seed(scores_mod.scoring_seed(config.seed))
    shape = _input_shape(model, data, input_shape)
    start = {u: select.unit_density(u, keep) for u in units}
    last_scores: dict[str, torch.Tensor] = {}
    scored_keep = keep
    for step in range(1, score.iterations + 1):
        step_units = units if step == score.iterations else [
            select.Unit(u.names, 1 - start[u] * ((1 - u.sparsity) / start[u]) ** (
                step / score.iterations)) if start[u] > 0 else u for u in units]
        weights = {n: p.detach() * keep[n].to(p.device, p.dtype) for n, p in params.items()}
        last_scores = _score(model, score, weights, inputs, targets, loss_fn, generator, shape,
                             config.seed)
        scored_keep, keep = keep, select.select(last_scores, keep, step_units)
    emptied = select.collapsed(keep)
    if emptied and not config.allow_collapse:
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
    return Mask(keep, tuple(emptied))


def _score(model, score, weights, inputs, targets, loss_fn, generator, shape, seed
           ) -> dict[str, torch.Tensor]:
    """One scoring pass; scores see masked weights under the names functional_call takes."""
    storage = {masks.storage_name(model, n): n for n in weights}
    ctx = scores_mod.Context(model, {s: weights[n] for s, n in storage.items()}, inputs,
                             targets, loss_fn, generator, shape)
    with scores_mod.scoring_mode(model, score.train_mode, seed):
        found = score.scores(ctx)
    return {storage[s]: v.detach() for s, v in found.items()}


def score_weights(
    model: nn.Module,
    method: str | scores_mod.Score = "magnitude",
    data: Splits | Dataset | tuple[Inputs, torch.Tensor | None] | None = None,
    *,
    skip: tuple[str, ...] = (),
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    input_shape: tuple[int, ...] | None = None,
    **options: Any,
) -> dict[str, torch.Tensor]:
    """One scoring pass of `method` on the model's current (masked) weights, without pruning:
    {weight name: scores} (higher = more important). For studies that rank weights once."""
    score = scores_mod.make(method, **options)
    params = prunable(model, skip)
    if not params:
        raise NetshrinkError("the model has nothing to prune: no Linear or Conv weight")
    inputs = targets = None
    if score.needs_data:
        if data is None:
            raise NetshrinkError(f"method {score.name!r} needs data")
        inputs, targets = _examples(data, model, loss_fn, score.name)
    weights = {n: p.detach() for n, p in params.items()}
    generator = torch.Generator().manual_seed(scores_mod.scoring_seed(seed))
    return _score(model, score, weights, inputs, targets, loss_fn, generator,
                  _input_shape(model, data, input_shape), seed)
