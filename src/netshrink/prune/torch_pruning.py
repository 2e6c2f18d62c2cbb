"""Torch-Pruning (PyPI `torch-pruning`), run the same way as netshrink's structured pruning.

The baseline of the structured benchmarks and of `netshrink reproduce structured`: its
dependency graph (traced from the autograd graph of one forward) and its MetaPruner, with the
criterion of the same name, the model's output layer left whole, at the same sparsity. Needs
the `structured` extra: pip install 'netshrink[structured]'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    import torch_pruning as tp


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_pruning") is not None


def _module():
    try:
        import torch_pruning
    except ModuleNotFoundError:
        raise NetshrinkError("the Torch-Pruning baseline needs torch-pruning: pip install "
                             "'netshrink[structured]'") from None
    return torch_pruning


def importance(criterion: str) -> tp.importance.Importance:
    """Torch-Pruning's importance of the same name."""
    tp = _module()
    table = {"l1": lambda: tp.importance.MagnitudeImportance(p=1),
             "l2": lambda: tp.importance.MagnitudeImportance(p=2),
             "taylor": tp.importance.TaylorImportance,
             "bn_scale": tp.importance.BNScaleImportance,
             "random": tp.importance.RandomImportance}
    if criterion not in table:
        raise NetshrinkError(f"criterion={criterion!r}: Torch-Pruning is run with one of "
                             f"{', '.join(table)}")
    return table[criterion]()


def output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The Linear / Conv layers whose output is the model's output (left whole)."""
    from netshrink.prune.graph import channel_groups

    modules = dict(model.named_modules())
    return [modules[g.name] for g in channel_groups(model, example)
            if g.fixed == "the model's output"]


def prune(model: nn.Module, example: torch.Tensor, sparsity: float, criterion: str = "l1",
          global_pruning: bool = False, data: tuple | None = None,
          loss_fn: Callable = F.cross_entropy) -> nn.Module:
    """Prune `model` in place with Torch-Pruning's MetaPruner; data: (inputs, labels) for the
    taylor criterion."""
    tp = _module()
    ignored = output_layers(model, example)
    pruner = tp.pruner.MetaPruner(model, example, importance=importance(criterion),
                                  pruning_ratio=sparsity, global_pruning=global_pruning,
                                  ignored_layers=ignored)
    if criterion == "taylor":
        if data is None:
            raise NetshrinkError("Torch-Pruning's taylor criterion needs data=(inputs, labels)")
        model.zero_grad()
        loss_fn(model(data[0]), data[1]).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    return model
