"""BatchNorm folding: conv -> BN (eval mode) becomes one conv with adjusted weight and bias.

At inference a BatchNorm is an affine map per channel, so it merges exactly into the layer
before it; the integer model then has one product per layer and no float BN between them.
Pairs are found by tracing the model (torch.fx): a BN whose input is a Conv1d/2d/3d (or a
Linear, for BatchNorm1d) used by nothing else, whose weights the forward reads nowhere else
(a direct read would see the folded ones). A model that cannot be traced, or a BN elsewhere,
is left as it is (and reported). A masked layer keeps its mask: the folded weight
is its masked weight scaled per output channel, so the zeros stay.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from netshrink.core import masks
from netshrink.core.swap import base_type, get_module, set_module
from netshrink.quant.direct_reads import read_directly

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PAIRS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d,
          nn.Linear: nn.BatchNorm1d}

__all__ = ["find_pairs", "fold_", "fold_batchnorm", "get_module", "replay_fold", "set_module",
           "traceable"]
TRANSFORM_KIND = "fold"


def traceable(model: nn.Module) -> bool:
    """Whether torch.fx can trace the model (folding needs its graph)."""
    try:
        torch.fx.symbolic_trace(model)
    except Exception:  # data-dependent control flow and the like
        return False
    return True


def find_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer path, batchnorm path) of every foldable pair, in order."""
    if not any(isinstance(m, _BN) for m in model.modules()):
        return []
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # models with data-dependent control flow are left unfolded
        return []
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(get_module(model, node.target), _BN):
            continue
        source = node.args[0]
        if not isinstance(source, torch.fx.Node) or source.op != "call_module":
            continue
        layer = get_module(model, source.target)
        bn = get_module(model, node.target)
        fits = _PAIRS.get(base_type(layer)) is type(bn)
        if fits and len(source.users) == 1 and bn.track_running_stats and \
                not read_directly(graph, model, layer):  # folding changes what that reads
            pairs.append((source.target, node.target))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every foldable BN into the layer before it (in place); return the pairs folded."""
    pairs = find_pairs(model)
    for layer_path, bn_path in pairs:
        layer, bn = get_module(model, layer_path), get_module(model, bn_path)
        fuse = fuse_linear_bn_weights if isinstance(layer, nn.Linear) else fuse_conv_bn_weights
        weight, bias = fuse(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps,
                            bn.weight, bn.bias)
        masks.stored(layer, "weight").copy_(weight.detach())  # a mask, if any, stays on it
        layer.bias = nn.Parameter(bias.detach())
        set_module(model, bn_path, nn.Identity())
    return pairs


def fold_(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every foldable BatchNorm of `model` (in eval mode) into the layer before it, and
    record it so `netshrink.load` replays it; return the (layer, batchnorm) pairs folded."""
    from netshrink.core import transforms

    model.eval()
    pairs = fold_batchnorm(model)
    if pairs:
        transforms.record(model, {"kind": TRANSFORM_KIND, "pairs": [list(p) for p in pairs]})
    return pairs


def replay_fold(model: nn.Module, pairs: list) -> None:
    """Give `model` the structure folding produced (weights come from the file)."""
    for layer_path, bn_path in pairs:
        layer = get_module(model, layer_path)
        if layer.bias is None:
            out = layer.weight.shape[0]
            layer.bias = nn.Parameter(torch.zeros(out, device=layer.weight.device))
        set_module(model, bn_path, nn.Identity())
