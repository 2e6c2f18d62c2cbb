"""Structured pruning: remove whole channels, neurons, attention heads and feed-forward neurons.

    result = netshrink.prune_(model, StructuredConfig(sparsity=0.5), data)   # group_l1
    print(result.format())     # what each layer kept, parameters and FLOPs before and after

The model comes out an ordinary smaller nn.Module (nn.Conv2d with fewer filters, the
BatchNorm, the next layer and everything coupled by residual additions or concatenations
rewritten to match; ProjectedAttention with fewer heads), so it runs faster on any runtime,
saves, loads (`netshrink.load(path, model=fresh)` replays the removal), quantizes and exports.
Which channels must go together comes from the model's graph (netshrink.prune.graph); heads
and feed-forward neurons of known transformer blocks from netshrink.prune.blocks; importance
from netshrink.prune.criteria.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from netshrink.core.patterns import check_patterns, last_match, matches
from netshrink.data import Splits, tensors_of
from netshrink.data.inputs import Inputs
from netshrink.errors import NetshrinkError, reject_unknown_fields
from netshrink.prune import criteria, rewrite
from netshrink.prune.blocks import block_groups, decompose_attention
from netshrink.prune.graph import Group, channel_groups
from netshrink.prune.mask import integer_weights
from netshrink.train.loop import first_call, logits

TARGETS = ("channels", "heads", "ffn")
SCOPES = ("layerwise", "global")
# criteria whose scores differ in scale from layer to layer: divided by their layer's mean
# before a global ranking (bn_scale is ranked raw, as network slimming's global threshold)
_NORMALIZED = frozenset({"l1", "l2", "group_l1", "group_l2", "taylor"})


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise NetshrinkError(f"{name}={value!r} must be a number in [0, 1): the fraction of "
                             "channels (heads, neurons) removed")
    return float(value)


@dataclass(frozen=True)
class StructuredConfig:
    """How to prune structure.

    criterion: l1, l2 (the filter), group_l1, group_l2 (every weight the unit touches), taylor
        (needs data), bn_scale or random (netshrink.prune.criteria).
    sparsity: the fraction of each group's units removed (channels, heads, neurons), in [0, 1).
    scope: "layerwise" removes that fraction from every group; "global" ranks the units of
        all groups of a kind together (scores divided by their group's mean, except bn_scale).
    targets: what to remove: "channels" (convolution channels and Linear neurons, from the
        model's graph), "heads" (attention heads), "ffn" (transformer feed-forward neurons).
    layers: {layer pattern: sparsity} for groups pruned at their own rate (layerwise).
    skip: layer patterns never pruned (a group is skipped if any layer making it matches).
    seed: seeds the random criterion.
    """

    criterion: str = "group_l1"
    sparsity: float = 0.5
    scope: str = "layerwise"
    targets: tuple = TARGETS
    layers: dict = field(default_factory=dict)
    skip: tuple = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.criterion not in criteria.CRITERIA:
            raise NetshrinkError(f"criterion={self.criterion!r} must be one of "
                                 f"{', '.join(criteria.CRITERIA)}")
        _fraction(self.sparsity, "sparsity")
        if self.scope not in SCOPES:
            raise NetshrinkError(f"scope={self.scope!r} must be one of {', '.join(SCOPES)}")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        if not targets or any(t not in TARGETS for t in targets):
            raise NetshrinkError(f"targets={self.targets!r} must name some of "
                                 f"{', '.join(TARGETS)}")
        object.__setattr__(self, "targets", targets)
        if not isinstance(self.layers, dict):
            raise NetshrinkError(f"layers={self.layers!r} must map layer patterns to sparsities")
        for pattern, value in self.layers.items():
            if not isinstance(pattern, str) or not pattern:
                raise NetshrinkError(f"layers: {pattern!r} is not a layer name pattern")
            _fraction(value, f"layers[{pattern!r}]")
        if isinstance(self.skip, str) or not all(isinstance(s, str) and s for s in self.skip):
            raise NetshrinkError(f"skip={self.skip!r} must be a list of layer name patterns")
        object.__setattr__(self, "skip", tuple(self.skip))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or \
                not 0 <= self.seed < 2**63:
            raise NetshrinkError(f"seed={self.seed!r} must be an integer in [0, 2**63)")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["targets"], out["skip"] = list(self.targets), list(self.skip)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> StructuredConfig:
        if not isinstance(values, dict):
            raise NetshrinkError(f"a structured config must be a mapping, not "
                                 f"{type(values).__name__}")
        reject_unknown_fields(cls, values, "structured pruning option")
        values = dict(values)
        for key in ("targets", "skip"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


class StructuredCollapseError(NetshrinkError):
    """Pruning would remove every unit of a layer; `layers` names them."""

    def __init__(self, message: str, layers: tuple[str, ...]):
        super().__init__(message)
        self.layers = layers


@dataclass(frozen=True)
class GroupChange:
    """One group's units before and after, and the layers rewritten with it."""

    kind: str
    before: int
    after: int
    layers: tuple[str, ...]


@dataclass
class StructuredResult:
    """What structured pruning removed and what the model costs before and after.

    changed: {group name: GroupChange}; kept_whole: {group name: why it was not pruned};
    FLOPs are for one example (None without an example input).
    """

    config: StructuredConfig
    changed: dict[str, GroupChange]
    kept_whole: dict[str, str]
    parameters_before: int
    parameters_after: int
    flops_before: int | None = None
    flops_after: int | None = None

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(),
                "changed": {k: asdict(v) for k, v in self.changed.items()},
                "kept_whole": dict(self.kept_whole),
                "parameters_before": self.parameters_before,
                "parameters_after": self.parameters_after,
                "flops_before": self.flops_before, "flops_after": self.flops_after}

    def format(self) -> str:
        lines = [f"{'group':<40} {'kind':<9} {'before':>7} {'after':>7}"]
        for name, c in self.changed.items():
            lines.append(f"{name:<40} {c.kind:<9} {c.before:>7} {c.after:>7}")
        for name, why in self.kept_whole.items():
            lines.append(f"{name:<40} kept whole: {why}")
        lines.append(f"parameters {self.parameters_before:,} -> {self.parameters_after:,}")
        if self.flops_before:
            lines.append(f"FLOPs per example {self.flops_before:,} -> {self.flops_after:,} "
                         "(a count, not a speed-up: measure latency for that)")
        return "\n".join(lines)


# --- inputs ------------------------------------------------------------------------------
def call(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | dict[str, torch.Tensor],
) -> Any:
    """model(inputs): a tensor, a tuple of positional tensors, or a dict of keyword tensors."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple | list):
        return model(*inputs)
    return model(inputs)


def _slice(inputs, rows: slice):
    if isinstance(inputs, dict):
        return {k: v[rows] for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return tuple(v[rows] for v in inputs)
    return inputs[rows]


def _examples(data) -> tuple[object, torch.Tensor | None]:
    """(inputs, labels or None) from a Splits, a Dataset or an (inputs, labels) tuple."""
    if data is None:
        return None, None
    if isinstance(data, Splits):
        data = data.train
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], torch.Tensor) and \
            not isinstance(data[0], torch.Tensor | dict | tuple | list):
        raise NetshrinkError("data=(inputs, labels): inputs must be a tensor, a tuple of "
                             "tensors or a dict of tensors")
    if isinstance(data, tuple) and len(data) == 2 and (data[1] is None or
                                                       isinstance(data[1], torch.Tensor)):
        return data
    if isinstance(data, torch.utils.data.Dataset):
        return tensors_of(data)
    raise NetshrinkError("data must be a Splits, a Dataset or an (inputs, labels) tuple "
                         f"(labels may be None), not {type(data).__name__}")


def _example(model: nn.Module, inputs, example, input_shape, zoo_shape: bool):
    """Inputs for one forward: given, the data's first examples, or random ones of the
    input shape (the zoo's, when `zoo_shape`)."""
    if example is not None:
        return example
    if inputs is not None:
        return _to(_slice(inputs, slice(0, 2)), next(model.parameters()).device)
    if input_shape is None and not zoo_shape:
        return None
    shape = input_shape or (getattr(model, "netshrink_spec", None) or {}).get(
        "args", {}).get("input_shape")
    if shape:
        device = next(model.parameters()).device
        return torch.rand(2, *(int(s) for s in shape), device=device)
    return None


def _flops(model: nn.Module, example) -> int | None:
    from torch.utils.flop_counter import FlopCounterMode

    if example is None:
        return None
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        call(model, _slice(example, slice(0, 1)))
    model.train(was_training)
    return int(counter.get_total_flops())


def _parameters(model: nn.Module) -> int:
    from netshrink.measure import count_parameters

    return count_parameters(model)


# --- choosing the units ------------------------------------------------------------------
def _candidates(model: nn.Module, config: StructuredConfig, example
                ) -> tuple[list[Group], dict[str, str]]:
    groups: list[Group] = []
    if "channels" in config.targets:
        if example is None:
            raise NetshrinkError("removing channels needs an example input to follow the "
                                 "graph: pass data=(inputs, labels), example=inputs or "
                                 "input_shape=(C, H, W)")
        groups += channel_groups(model, example)
    if {"heads", "ffn"} & set(config.targets):
        groups += [g for g in block_groups(model) if g.kind in config.targets]
    kept: dict[str, str] = {}
    chosen = []
    for g in groups:
        producers = [m.path for m in g.producers]
        if g.fixed:
            kept[g.name] = g.fixed
        elif any(matches(p, s) for p in producers for s in config.skip):
            kept[g.name] = "skipped"
        elif g.size < 2:
            kept[g.name] = "a single unit"
        else:
            chosen.append(g)
    return chosen, kept


def _rate(group: Group, config: StructuredConfig) -> float | None:
    """The group's own sparsity from `layers`, None when it takes the config's."""
    for member in group.producers:
        found = last_match(member.path, config.layers)
        if found is not None:
            return float(found)
    return None


def _removed(n: int, rate: float) -> int:
    return int(rate * n + 1e-9)


def _best(scores: torch.Tensor, kept: int, blocks: int = 1) -> torch.Tensor:
    """Sorted indices of the `kept` highest scores; with blocks > 1 the ceil(kept / blocks)
    highest of each of `blocks` equal runs, so a grouped convolution keeps as many channels
    in every group (and stays one)."""
    if blocks == 1:
        return torch.argsort(scores, descending=True, stable=True)[:kept].sort().values
    width = len(scores) // blocks
    per = min(width, -(-kept // blocks))
    order = torch.argsort(scores.reshape(blocks, width), dim=1, descending=True, stable=True)
    chosen = order[:, :per].sort(dim=1).values + torch.arange(blocks)[:, None] * width
    return chosen.flatten()


def select(groups: list[Group], scores: dict[str, torch.Tensor], config: StructuredConfig
           ) -> dict[str, torch.Tensor]:
    """{group name: sorted indices of the units kept}; refuses to empty a group. A group in
    blocks (grouped convolutions) keeps the same number in each block (rounded up)."""
    keep: dict[str, torch.Tensor] = {}
    pooled: dict[str, list[Group]] = {}
    for g in groups:
        rate = _rate(g, config)
        if config.scope == "global" and rate is None:
            pooled.setdefault(g.kind, []).append(g)
            continue
        rate = config.sparsity if rate is None else rate
        keep[g.name] = _best(scores[g.name], g.size - _removed(g.size, rate), g.blocks)
    for members in pooled.values():
        values, owners = [], []
        for g in members:
            s = scores[g.name].double()
            if config.criterion in _NORMALIZED and s.mean() > 0:
                s = s / s.mean()
            values.append(s)
            owners += [(g.name, i) for i in range(g.size)]
        flat = torch.cat(values)
        drop = set(torch.argsort(flat, stable=True)[:_removed(len(flat), config.sparsity)]
                   .tolist())
        kept: dict[str, list[int]] = {g.name: [] for g in members}
        for j, (name, i) in enumerate(owners):
            if j not in drop:
                kept[name].append(i)
        for g in members:  # as many as the global ranking keeps, evened out per block
            idx = torch.tensor(kept[g.name], dtype=torch.long)
            keep[g.name] = idx if g.blocks == 1 else _best(scores[g.name], len(idx), g.blocks)
    emptied = tuple(name for name, idx in keep.items() if len(idx) == 0)
    if emptied:
        raise StructuredCollapseError(
            f"structured pruning at sparsity {config.sparsity:g} ({config.scope}) would remove "
            f"every unit of {', '.join(emptied)} (layer collapse); ask for less, use "
            "scope='layerwise', or skip those layers", emptied)
    return keep


def plan(model: nn.Module, groups: list[Group], keep: dict[str, torch.Tensor]
         ) -> tuple[dict, dict]:
    """(layers, attention): the kept entries of every axis each group touches; entries of an
    axis that no pruned group owns (other inputs of a concatenation) stay."""
    removed: dict[tuple[str, str], set[int]] = {}
    attention: dict[str, tuple[torch.Tensor, str]] = {}
    for g in groups:
        if len(keep[g.name]) == g.size:
            continue
        dropped = torch.ones(g.size, dtype=torch.bool)
        dropped[keep[g.name]] = False
        for m in g.members:
            if m.role in ("attention", "hf_attention"):
                attention[m.path] = (keep[g.name], m.role)
                continue
            axis = "out" if m.role == "out" else m.role
            removed.setdefault((m.path, axis), set()).update(
                m.positions(g.size)[dropped].flatten().tolist())
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for (path, axis), gone in removed.items():
        size = rewrite._size(model.get_submodule(path), axis, path)
        layers.setdefault(path, {})[axis] = torch.tensor(
            [i for i in range(size) if i not in gone], dtype=torch.long)
    return layers, attention


# --- the verb ----------------------------------------------------------------------------
def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    quantized = list(integer_weights(model))
    fake = [n for n, m in model.named_modules() if type(m).__module__.startswith(
        "netshrink.quant")]
    if quantized or fake:
        raise NetshrinkError(f"cannot remove structure from {(quantized or fake)[0]}: it is "
                             "quantized (or prepared for QAT); prune structure first, then "
                             "quantize")


def prune_structured(
    model: nn.Module,
    config: StructuredConfig,
    data: Splits | Dataset | tuple[Inputs, torch.Tensor | None] | None = None,
    *,
    loss_fn: Callable = F.cross_entropy,
    input_shape: tuple[int, ...] | None = None,
    example: torch.Tensor | Sequence[torch.Tensor] | dict[str, torch.Tensor] | None = None,
) -> StructuredResult:
    """Remove the least important units of `model` in place (see the module docstring).

    data: (inputs, labels) or a Splits / Dataset: the example input the graph is followed
        with, and the training batches of the taylor criterion (labels may be None otherwise).
    example: inputs for one forward when no data is given (a tensor, a tuple of the
        forward's arguments or a dict of keyword tensors); input_shape: one example's shape.
    """
    _check_model(model)
    inputs, labels = _examples(data)
    example = _example(model, inputs, example, input_shape, "channels" in config.targets)
    if isinstance(example, dict) and "channels" in config.targets:
        from netshrink.prune.graph import forward_args

        forward_args(model, example)  # a keyword the forward does not take is named up front
    names = [n for n, _ in model.named_modules() if n]
    check_patterns(list(config.skip), names, "skip")
    check_patterns(list(config.layers), names, "layers")
    parameters_before, flops_before = _parameters(model), _flops(model, example)
    reference = _output_shape(model, example)
    decomposed = decompose_attention(model) if "heads" in config.targets else []
    groups, kept_whole = _candidates(model, config, example)
    batches = None
    if config.criterion in criteria.NEEDS_DATA:
        if inputs is None or labels is None:
            raise NetshrinkError(f"criterion {config.criterion!r} needs training data with "
                                 "labels: pass data=(inputs, labels) or a Splits")
        batches = _batcher(model, inputs, labels)
    generator = torch.Generator().manual_seed(config.seed)
    def loss_of(m: nn.Module, batch: tuple) -> torch.Tensor:
        out = first_call(m, batch[0], f"criterion {config.criterion!r}")
        if loss_fn is F.cross_entropy:
            out = logits(out, f"criterion {config.criterion!r} with the default loss")
        return loss_fn(out, batch[1])

    found = criteria.scores(model, groups, config.criterion, generator, batches, loss_of)
    for g in groups:
        if g.name not in found:
            kept_whole[g.name] = f"{config.criterion} cannot rank it (no BatchNorm)"
    groups = [g for g in groups if g.name in found]
    keep = select(groups, found, config)
    layers, attention = plan(model, groups, keep)
    rewrite.apply_plan(model, layers, attention)
    if layers or attention or decomposed:
        rewrite.record_plan(model, decomposed, layers, attention)
    after = _output_shape(model, example)
    if after != reference:  # a rewrite the graph got wrong: never hand it back silently
        raise NetshrinkError(f"internal error: the pruned model's output shape {after} "
                             f"differs from the original's {reference}")
    changed = {g.name: GroupChange(g.kind, g.size, len(keep[g.name]), tuple(g.paths()))
               for g in groups}
    return StructuredResult(config, changed, kept_whole, parameters_before, _parameters(model),
                            flops_before, _flops(model, example))


def _output_shape(model: nn.Module, example):
    if example is None:
        return None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = call(model, example)
    model.train(was_training)
    return tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__


def _to(inputs, device: torch.device):
    if isinstance(inputs, dict):
        return {k: v.to(device) for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return tuple(v.to(device) for v in inputs)
    return inputs.to(device)


def _batcher(model: nn.Module, inputs, labels, batch_size: int = 128) -> Callable:
    """Batches of the first TAYLOR_EXAMPLES training examples, on the model's device."""
    n = min(len(labels), criteria.TAYLOR_EXAMPLES)
    device = next(model.parameters()).device

    def batches():
        for start in range(0, n, batch_size):
            rows = slice(start, min(n, start + batch_size))
            yield _to(_slice(inputs, rows), device), labels[rows].to(device)

    return batches

