"""The one way pruning scores run the model: on substitute weights, inputs of any shape.

Scores differentiate with respect to copies of the weights (masked, detached, or |w| in float64
for SynFlow) without touching the model, through torch.func.functional_call. Every score and
the Hessian estimators call the model here, so how the weights are passed changes in one place.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from netshrink.data.inputs import Inputs, arguments


def forward(model: nn.Module, weights: dict[str, torch.Tensor], inputs: Inputs) -> Any:
    """model(inputs) with `weights` (name -> tensor) in place of the model's own tensors."""
    args, kwargs = arguments(inputs)
    return functional_call(model, weights, args, kwargs, strict=False)
