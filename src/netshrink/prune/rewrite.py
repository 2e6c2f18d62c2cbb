"""Physically smaller layers: keep some entries of each pruned axis and rebuild the layer.

A plan says, per layer, which entries of which axis stay: {"out": [...]} (rows of a Linear
or convolution, columns of an Embedding), {"in": [...]} (input columns), {"norm": [...]}
(BatchNorm and LayerNorm entries), {"depthwise": [...]} (a depthwise convolution's channels),
{"heads": [...]} (the heads an attention module keeps). A grouped convolution keeps its
groups: its "out" and "in" must keep as many channels of every group, and each group's
filters keep the input columns of that group's kept channels. Each layer is rebuilt once as an
ordinary, smaller torch layer (nn.Linear, nn.Conv2d, nn.BatchNorm2d, ...) through
core.swap.replace_module, which carries a mask of the kept entries when the layer had one.

The same plan is recorded on the model (core.transforms kind "structured"), and `replay`
applies it to a freshly built model, so `netshrink.load(path, model=fresh)` gets the smaller
shapes before it loads the file's weights.
"""

from __future__ import annotations

import torch
from torch import nn

from netshrink.core import masks
from netshrink.core.attention import ProjectedAttention, keep_encoders_on_slow_path
from netshrink.core.swap import base_type, get_module, module_masks, replace_module
from netshrink.core.transforms import record
from netshrink.errors import NetshrinkError

KIND = "structured"
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_AXES = ("out", "in", "norm", "depthwise", "heads")


def _take(tensor: torch.Tensor | None, keep: dict[int, torch.Tensor]) -> torch.Tensor | None:
    """The kept entries along each dim; a 2-D index [groups, n] along a dim keeps, in each
    of the `groups` equal runs of rows (dim 0), that run's own n entries (the input columns
    of a grouped convolution's groups)."""
    if tensor is None:
        return None
    for dim, idx in keep.items():
        idx = idx.to(tensor.device)
        if idx.dim() == 2:
            runs = tensor.reshape(idx.shape[0], -1, *tensor.shape[1:])
            tensor = torch.cat([run.index_select(dim, i) for run, i in zip(runs, idx,
                                                                            strict=True)])
        else:
            tensor = tensor.index_select(dim, idx)
    return tensor


def _per_group(kept: torch.Tensor, groups: int, size: int, what: str, path: str
               ) -> torch.Tensor:
    """[groups, n] positions within each group of a grouped convolution's kept channels
    (`size` in all); refused unless every group keeps n of its own, listed group by group,
    since anything else is no longer a convolution in `groups` groups."""
    width = size // groups
    owner = kept // width
    if len(kept) % groups or not torch.equal(
            owner, torch.arange(len(kept)) // max(1, len(kept) // groups)):
        raise NetshrinkError(
            f"{path}: a grouped convolution ({groups} groups) keeps the same number of {what} "
            f"in each group, listed group by group; the plan keeps {kept.tolist()[:32]}")
    return (kept - owner * width).reshape(groups, -1)


def _tensors(module: nn.Module, spec: dict[str, torch.Tensor], path: str) -> dict[str, dict]:
    """{attribute: {dim: kept indices}} for the layer's tensors."""
    kind = base_type(module)
    out, inp = spec.get("out"), spec.get("in")
    if kind is nn.Linear:
        return {"weight": _dims({0: out, 1: inp}), "bias": _dims({0: out})}
    if kind in _CONV:
        rows = spec.get("depthwise", out)
        if module.groups > 1 and "depthwise" not in spec:
            if out is not None:
                _per_group(out, module.groups, module.out_channels, "output channels", path)
            if inp is not None:
                inp = _per_group(inp, module.groups, module.in_channels, "input channels",
                                 path)
        return {"weight": _dims({0: rows, 1: inp}), "bias": _dims({0: rows})}
    if kind in _BATCHNORM or kind is nn.LayerNorm:
        n = spec["norm"]
        return {a: {0: n} for a in ("weight", "bias", "running_mean", "running_var")}
    if kind is nn.Embedding:
        return {"weight": _dims({1: out})}
    raise NetshrinkError(f"no rule rebuilds a {kind.__name__} with fewer channels")


def _dims(table: dict) -> dict:
    return {d: i for d, i in table.items() if i is not None}


def _rebuilt(module: nn.Module, spec: dict[str, torch.Tensor]) -> nn.Module:
    """An empty layer of `module`'s type and settings with the plan's sizes."""
    kind = base_type(module)
    n = {k: len(v) for k, v in spec.items()}
    if kind is nn.Linear:
        return nn.Linear(n.get("in", module.in_features), n.get("out", module.out_features),
                         bias=module.bias is not None)
    if kind in _CONV:
        if "depthwise" in n:
            channels = cin = cout = n["depthwise"]
        else:
            channels = module.groups
            cin, cout = n.get("in", module.in_channels), n.get("out", module.out_channels)
        return kind(cin, cout, module.kernel_size, module.stride, module.padding,
                    module.dilation, channels, module.bias is not None, module.padding_mode)
    if kind in _BATCHNORM:
        return kind(n["norm"], module.eps, module.momentum, module.affine,
                    module.track_running_stats)
    if kind is nn.LayerNorm:
        return nn.LayerNorm(n["norm"], module.eps, module.elementwise_affine,
                            bias=module.bias is not None)
    if kind is nn.Embedding:
        return nn.Embedding(module.num_embeddings, n["out"], module.padding_idx,
                            module.max_norm, module.norm_type, module.scale_grad_by_freq,
                            module.sparse)
    raise NetshrinkError(f"no rule rebuilds a {kind.__name__} with fewer channels")


@torch.no_grad()
def shrink_layer(model: nn.Module, path: str, spec: dict[str, torch.Tensor]) -> None:
    """Replace the layer at `path` by a smaller one holding the kept entries (masks too)."""
    old = get_module(model, path)
    where = _tensors(old, spec, path)
    new = _rebuilt(old, spec)
    like = next(iter(old.parameters()), None)
    if like is not None:
        new.to(device=like.device, dtype=like.dtype)
    for attr, keep in where.items():
        source = getattr(old, attr, None)
        if not isinstance(source, torch.Tensor):
            continue
        if attr in getattr(old, "parametrizations", {}):
            source = masks.stored(old, attr)
        getattr(new, attr).copy_(_take(source.detach(), keep))
    if hasattr(old, "num_batches_tracked") and old.num_batches_tracked is not None:
        new.num_batches_tracked.copy_(old.num_batches_tracked)
    carry = {attr: _take(keep_mask, where.get(attr, {}))
             for attr, keep_mask in module_masks(old).items()}
    new.train(old.training)
    replace_module(model, path, new, carry)


@torch.no_grad()
def shrink_attention(model: nn.Module, path: str, heads: torch.Tensor, role: str) -> None:
    """Tell an attention module how many heads it now has (its projections are rebuilt as
    layers); a ProjectedAttention's bias_k / bias_v keep the kept heads' entries."""
    module = get_module(model, path)
    if role == "hf_attention":
        module.num_attention_heads = len(heads)
        module.all_head_size = len(heads) * module.attention_head_size
        return
    if not isinstance(module, ProjectedAttention):
        raise NetshrinkError(f"{path} is a {type(module).__name__}, not an attention module")
    rows = (heads[:, None] * module.head_dim + torch.arange(module.head_dim)[None, :]).flatten()
    for name in ("bias_k", "bias_v"):
        bias = getattr(module, name)
        if bias is not None:
            setattr(module, name, nn.Parameter(_take(bias.detach(), {2: rows}),
                                               requires_grad=bias.requires_grad))
    module.num_heads = len(heads)


def apply_plan(model: nn.Module, layers: dict[str, dict[str, torch.Tensor]],
               attention: dict[str, tuple[torch.Tensor, str]]) -> None:
    """Rebuild every layer of `layers` and tell every attention module of `attention`."""
    for path, spec in layers.items():
        shrink_layer(model, path, spec)
    for path, (heads, role) in attention.items():
        shrink_attention(model, path, heads, role)
    if attention:
        keep_encoders_on_slow_path(model)


def entry(decomposed: list[str], layers: dict, attention: dict) -> dict:
    """The transform record of one structured pruning (JSON: lists of kept indices)."""
    return {"kind": KIND, "decomposed": list(decomposed),
            "layers": {p: {k: v.tolist() for k, v in spec.items()} for p, spec in
                       layers.items()},
            "attention": {p: {"heads": h.tolist(), "role": r} for p, (h, r) in
                          attention.items()}}


def record_plan(model: nn.Module, decomposed: list[str], layers: dict, attention: dict) -> None:
    record(model, entry(decomposed, layers, attention))


def _indices(values, path: str, axis: str, size: int) -> torch.Tensor:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < size for v in values):
        raise NetshrinkError(f"the file keeps entries {str(values)[:60]} of {path!r} ({axis}), "
                             f"which has {size}; the file does not match this model")
    return torch.tensor(values, dtype=torch.long)


def _size(module: nn.Module, axis: str, path: str) -> int:
    kind = base_type(module)
    if axis == "heads":
        return getattr(module, "num_heads", getattr(module, "num_attention_heads", 0))
    sizes = {
        nn.Linear: {"out": "out_features", "in": "in_features"},
        nn.Embedding: {"out": "embedding_dim"},
        **{c: {"out": "out_channels", "in": "in_channels", "depthwise": "out_channels"}
           for c in _CONV},
        **{b: {"norm": "num_features"} for b in _BATCHNORM},
    }
    if kind is nn.LayerNorm and axis == "norm":
        return module.normalized_shape[0]
    if kind not in sizes or axis not in sizes[kind]:
        raise NetshrinkError(f"the file shrinks {path!r} ({axis}), a {kind.__name__} in this "
                             "model; the file does not match this model")
    return getattr(module, sizes[kind][axis])


def check_entry(record_entry: dict) -> None:
    """The shape of a structured entry read from a file (before anything is built from it):
    layer names, each axis a list of distinct indices, attention roles."""
    decomposed = record_entry.get("decomposed", [])
    layers, attention = record_entry.get("layers"), record_entry.get("attention", {})
    if not isinstance(decomposed, list) or not all(isinstance(n, str) for n in decomposed):
        raise NetshrinkError("decomposed must be a list of attention layer names")
    if not isinstance(layers, dict) or not isinstance(attention, dict):
        raise NetshrinkError("layers and attention must be mappings of layer names")
    for path, spec in layers.items():
        if not isinstance(spec, dict) or not set(spec) <= set(_AXES):
            raise NetshrinkError(f"layer {str(path)[:40]}: a mapping of axes ({', '.join(_AXES)})")
        for axis, values in spec.items():
            _distinct(values, path, axis)
    for path, spec in attention.items():
        if not isinstance(spec, dict) or spec.get("role") not in ("attention", "hf_attention"):
            raise NetshrinkError(f"attention {str(path)[:40]}: a role and its heads")
        _distinct(spec.get("heads"), path, "heads")


def _distinct(values, path, axis: str) -> None:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values) or \
            len(set(values)) != len(values):
        raise NetshrinkError(f"layer {str(path)[:40]} ({axis}): the entries kept must be a "
                             "non-empty list of distinct indices")


def replay(model: nn.Module, record_entry: dict) -> nn.Module:
    """Give a fresh model the smaller shapes a structured entry describes."""
    from netshrink.prune.blocks import decompose_attention

    decomposed = record_entry.get("decomposed", [])
    layers, attention = record_entry.get("layers"), record_entry.get("attention", {})
    if not isinstance(decomposed, list) or not isinstance(layers, dict) or \
            not isinstance(attention, dict):
        raise NetshrinkError("corrupt structured entry (decomposed, layers or attention)")
    if decomposed:
        found = decompose_attention(model)
        if sorted(found) != sorted(decomposed):
            raise NetshrinkError(f"the file decomposes attention {decomposed}, the model has "
                                 f"{found}; the file does not match this model")
    plan: dict[str, dict[str, torch.Tensor]] = {}
    for path, spec in layers.items():
        module = _module(model, path)
        if not isinstance(spec, dict) or not set(spec) <= set(_AXES):
            raise NetshrinkError(f"corrupt structured entry for layer {path!r}")
        plan[path] = {axis: _indices(v, path, axis, _size(module, axis, path))
                      for axis, v in spec.items()}
    heads = {}
    for path, spec in attention.items():
        module = _module(model, path)
        if not isinstance(spec, dict) or spec.get("role") not in ("attention", "hf_attention"):
            raise NetshrinkError(f"corrupt structured entry for attention {path!r}")
        heads[path] = (_indices(spec.get("heads"), path, "heads", _size(module, "heads", path)),
                       spec["role"])
    apply_plan(model, plan, heads)
    return model


def _module(model: nn.Module, path) -> nn.Module:
    try:
        return get_module(model, path)
    except AttributeError:
        raise NetshrinkError(f"the file shrinks layer {path!r}, which the model lacks; the "
                             "file does not match this model") from None
