"""Network slimming's sparsity regularization (Liu et al. 2017): an L1 penalty on every
BatchNorm scale during training, so that unimportant channels' gammas shrink towards zero and
the bn_scale criterion can then remove them.

    fit(model, splits, TrainConfig(...), callbacks=[BatchNormSparsity(1e-4)])
    netshrink.prune_(model, StructuredConfig(criterion="bn_scale", scope="global"), splits)

The penalty's subgradient lam * sign(gamma) is added to each gamma's gradient after the
backward pass (as the paper's code does), so it works with any optimizer and loss.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.train.callbacks import Callback, TrainState

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class BatchNormSparsity(Callback):
    """Add strength * sign(gamma) to the gradient of every BatchNorm scale (the paper uses
    1e-4 for VGG, 1e-5 for ResNet on CIFAR)."""

    def __init__(self, strength: float = 1e-4):
        if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or \
                not strength > 0:
            raise NetshrinkError(f"strength={strength!r} must be a positive number (the L1 "
                                 "penalty on BatchNorm scales; 1e-4 in the paper)")
        self.strength = float(strength)
        self.scales: list[nn.Parameter] = []

    def on_fit_start(self, state: TrainState) -> None:
        self.scales = [m.weight for m in state.model.modules()
                       if isinstance(m, _BATCHNORM) and m.weight is not None]
        if not self.scales:
            raise NetshrinkError("BatchNormSparsity: the model has no BatchNorm with a scale")

    @torch.no_grad()
    def after_backward(self, state: TrainState) -> None:
        for gamma in self.scales:
            if gamma.grad is None:
                gamma.grad = torch.zeros_like(gamma)
            gamma.grad.add_(torch.sign(gamma), alpha=self.strength)
