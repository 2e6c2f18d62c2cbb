"""Bias correction for a class the transfer set left out (Hinton et al. 2015, section 3).

A student distilled without any example of a class learns it from the teacher's soft targets
alone, but its bias for that class ends up too low. The paper raises that bias by the amount
that optimizes overall performance (3.5 on MNIST's 3s). Adding delta to one bias adds delta to
that class's logit, so the sweep is computed once from the logits, and the chosen shift is then
written into the model's output layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink.data.inputs import call, to_device
from netshrink.errors import NetshrinkError
from netshrink.train import batches


def output_layer(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear (its logits layer), which must have a bias."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].bias is None:
        raise NetshrinkError(
            "bias correction needs a model whose last layer is an nn.Linear with a bias"
        )
    return linears[-1]


@torch.no_grad()
def logits_of(model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu",
              batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of the model on a data set, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    out, labels = [], []
    for x, y, _ in batches(dataset, batch_size, shuffle=False):
        out.append(call(model, to_device(x, device)).float().cpu())
        labels.append(y)
    model.train(was_training)
    return torch.cat(out), torch.cat(labels)


def sweep_class_bias(logits: torch.Tensor, labels: torch.Tensor, cls: int,
                     deltas: torch.Tensor) -> torch.Tensor:
    """Errors (count) for each shift of class `cls`'s logit by delta."""
    errors = []
    for delta in deltas.tolist():
        shifted = logits.clone()
        shifted[:, cls] += delta
        errors.append(int((shifted.argmax(1) != labels).sum()))
    return torch.tensor(errors)


def best_class_bias(logits: torch.Tensor, labels: torch.Tensor, cls: int,
                    deltas: torch.Tensor | None = None) -> float:
    """The shift of class `cls`'s bias with the fewest errors (smallest |delta| among ties)."""
    deltas = torch.arange(-2.0, 12.01, 0.1) if deltas is None else deltas
    errors = sweep_class_bias(logits, labels, cls, deltas)
    best = errors == errors.min()
    candidates = deltas[best]
    return float(candidates[candidates.abs().argmin()])


@torch.no_grad()
def shift_class_bias(model: nn.Module, cls: int, delta: float) -> nn.Module:
    """Add `delta` to the output bias of class `cls` (in place); returns the model."""
    layer = output_layer(model)
    if not 0 <= cls < layer.out_features:
        raise NetshrinkError(
            f"class {cls} is not an output of the model (0..{layer.out_features - 1})"
        )
    layer.bias[cls] += delta
    return model
