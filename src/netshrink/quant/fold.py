"""BatchNorm folding: conv -> BN (eval mode) becomes one conv with adjusted weight and bias.

At inference a BatchNorm is an affine map per channel, so it merges exactly into the layer
before it; the integer model then has one product per layer and no float BN between them.
Pairs are found by tracing the model (torch.fx): a BN whose input is a Conv2d (or Linear, for
BatchNorm1d) used by nothing else. A model that cannot be traced, or a BN elsewhere, is left as
it is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def get_module(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path) if path else model


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_module(model, parent), name, module)


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
        fits = (isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or (
            isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d))
        if fits and len(source.users) == 1 and bn.track_running_stats:
            pairs.append((source.target, node.target))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every foldable BN into the layer before it (in place); return the pairs folded."""
    pairs = find_pairs(model)
    for layer_path, bn_path in pairs:
        layer, bn = get_module(model, layer_path), get_module(model, bn_path)
        fuse = fuse_conv_bn_weights if isinstance(layer, nn.Conv2d) else fuse_linear_bn_weights
        weight, bias = fuse(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps,
                            bn.weight, bn.bias)
        layer.weight = nn.Parameter(weight.detach())
        layer.bias = nn.Parameter(bias.detach())
        set_module(model, bn_path, nn.Identity())
    return pairs


def replay_fold(model: nn.Module, pairs: list) -> None:
    """Give `model` the structure folding produced (weights come from the file)."""
    for layer_path, bn_path in pairs:
        layer = get_module(model, layer_path)
        if layer.bias is None:
            out = layer.weight.shape[0]
            layer.bias = nn.Parameter(torch.zeros(out, device=layer.weight.device))
        set_module(model, bn_path, nn.Identity())
