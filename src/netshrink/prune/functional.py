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


def output_tensors(out: Any) -> list[torch.Tensor]:
    """The floating-point tensors of a forward's result (a tensor, or tuples, lists and dicts
    of them, nested), so a score can use a model with several outputs (SynFlow sums them)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        return [t for v in out.values() for t in output_tensors(v)]
    if isinstance(out, tuple | list):
        return [t for v in out for t in output_tensors(v)]
    return []


def divided(out: Any, temperature: float) -> Any:
    """`out` with every floating-point tensor divided by `temperature` (the structure kept):
    the softened logits that GraSP differentiates, whatever the forward returns."""
    if temperature == 1:
        return out
    if isinstance(out, torch.Tensor):
        return out / temperature if out.is_floating_point() else out
    if isinstance(out, dict):
        return {k: divided(v, temperature) for k, v in out.items()}
    if isinstance(out, tuple | list):
        parts = [divided(v, temperature) for v in out]
        return type(out)(*parts) if hasattr(out, "_fields") else type(out)(parts)
    return out


def gradients(output: torch.Tensor, leaves: list[torch.Tensor], create_graph: bool = False
              ) -> list[torch.Tensor]:
    """d output / d leaves, zero for a leaf that `output` does not depend on (a head that the
    user's loss leaves out), where torch.autograd.grad would raise."""
    found = torch.autograd.grad(output, leaves, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(found, leaves, strict=True)]
