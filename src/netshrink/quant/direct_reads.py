"""Layers whose weights the model's forward reads itself, besides calling the layer.

An integer layer holds int8 codes under `weight` (a weight-only layer holds none, a decomposed
attention no `in_proj_weight`), so a forward that reads `fc.weight` on its own (an output
projection tied to an embedding written as `h @ emb.weight.t()`, a penalty on the weights)
would silently compute with codes instead of the weights after quantization. torch.fx shows
such reads as get_attr nodes (a masked weight: a call of its parametrizations) outside the
layer's own call; quantize_ refuses them by name before anything changes. A model torch.fx
cannot trace is not checked.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.errors import NetshrinkError


class _Tracer(torch.fx.Tracer):
    """torch.fx's tracer with the layers about to be quantized kept whole."""

    def __init__(self, leaves: set[int]):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return id(m) in self.leaves or super().is_leaf_module(m, qualname)


def _held(module: nn.Module, biases: bool = False) -> dict[int, str]:
    """{id of a stored tensor: its attribute} for the weights a quantized layer replaces
    (every parameter of the layer and its children; biases, which stay float, if asked)."""
    held = {}
    for sub_name, sub in module.named_modules():
        for attr, p in sub.named_parameters(recurse=False):
            if biases or attr != "bias":
                held[id(p)] = f"{sub_name}.{attr}" if sub_name else attr
        if parametrize.is_parametrized(sub):
            for attr, plist in sub.parametrizations.items():
                for key in (id(plist), id(plist.original)):  # fx calls the list, a leaf
                    held[key] = f"{sub_name}.{attr}" if sub_name else attr
    return held


def _resolve(model: nn.Module, target: str) -> object:
    try:
        return functools.reduce(getattr, target.split("."), model)
    except AttributeError:
        return None


def direct_reads(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, str]:
    """{layer name: "attribute (read by node N)"} for each of `layers` whose weights the
    forward reads outside the layer's own call; {} when torch.fx cannot trace the model."""
    watched: dict[int, tuple[str, str]] = {}
    for name, module in layers.items():
        for key, attr in _held(module).items():
            watched.setdefault(key, (name, attr))
    if not watched:
        return {}
    tracer = _Tracer({id(m) for m in layers.values()})
    try:
        graph = tracer.trace(model)
    except Exception:  # data-dependent control flow and the like: nothing to see
        return {}
    return reads_in(graph, model, watched)


def read_directly(graph: torch.fx.Graph, model: nn.Module, layer: nn.Module) -> bool:
    """Whether `graph` (a trace of `model` with `layer` a leaf) reads any parameter of
    `layer`, its bias included, outside the layer's call (BatchNorm folding would change
    what such a read sees)."""
    watched = {key: ("", attr) for key, attr in _held(layer, biases=True).items()}
    return bool(reads_in(graph, model, watched))


def reads_in(graph: torch.fx.Graph, model: nn.Module, watched: dict[int, tuple[str, str]]
             ) -> dict[str, str]:
    """{layer name: "attribute (read by node N)"} of the `watched` tensors ({id: (layer,
    attribute)}) that nodes of `graph` read."""
    found: dict[str, str] = {}
    for node in graph.nodes:
        if node.op not in ("get_attr", "call_module"):
            continue
        hit = watched.get(id(_resolve(model, node.target)))
        if hit is not None and hit[0] not in found:
            users = ", ".join(repr(u.name) for u in node.users) or "nothing"
            found[hit[0]] = f"{hit[1]} (read by node {users})"
    return found


def check_direct_reads(model: nn.Module, layers: dict[str, nn.Module], config_name: str
                       ) -> None:
    """Refuse layers whose weights the forward reads itself, naming each and the way out."""
    found = direct_reads(model, layers)
    if not found:
        return
    names = list(found)
    what = "; ".join(f"{n!r}: {found[n]}" for n in names[:4])
    raise NetshrinkError(
        f"the model's forward reads the weights of {what} itself, besides calling the "
        f"layer{'s' if len(names) > 1 else ''}; quantized, those tensors hold integer codes "
        "(or are gone), so the read would compute wrong numbers. Leave "
        f"{'them' if len(names) > 1 else 'it'} float: {config_name}(skip="
        f"{tuple(names)!r}), or call the layer instead of reading its weight")
