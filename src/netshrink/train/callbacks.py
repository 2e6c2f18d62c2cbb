"""Callbacks: how masks, quantization-aware training and distillation join the one training loop.

Subclass `Callback` and override only the hooks you need; the loop calls a hook only on the
callbacks that override it, so an unused hook costs nothing in the training step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from netshrink.data.inputs import Inputs


@dataclass
class TrainState:
    """What a callback may read (and the loop's live objects it may act on)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    config: object
    device: torch.device
    total_iterations: int
    iteration: int = 0
    epoch: int = 0
    stop: bool = False
    extra: dict = field(default_factory=dict)


class Callback:
    """Hooks of the training loop. All are optional."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the callback owns that the optimizer trains with the model's (e.g. a
        learned projection of a distillation hint); asked once, before the optimizer is built."""
        return []

    def on_fit_start(self, state: TrainState) -> None:
        """Once, before the first step (after the optimizer exists)."""

    def on_batch(
        self,
        state: TrainState,
        inputs: Inputs,
        targets: torch.Tensor,
        indices: torch.Tensor,
    ) -> tuple[Inputs, torch.Tensor]:
        """Return the (inputs, targets) to train on, before the forward pass (augmentation).

        Inputs are what the model's forward takes: a tensor, a tuple or a dict of tensors
        (netshrink.data.inputs).

        The `loss` hooks then see the returned inputs, so a teacher can run on the same
        augmented batch as the student.
        """
        return inputs, targets

    def loss(
        self,
        state: TrainState,
        inputs: Inputs,
        targets: torch.Tensor,
        indices: torch.Tensor,
        outputs: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        """Return the loss to minimize; `indices` are the examples' positions in the train set."""
        return loss

    def after_backward(self, state: TrainState) -> None:
        """Between backward and the optimizer step (gradients are ready)."""

    def after_step(self, state: TrainState) -> None:
        """After the optimizer step; `state.iteration` counts the steps done."""

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        """After each evaluation on the validation set; may set `state.stop`."""

    def on_fit_end(self, state: TrainState) -> None:
        """Once, after the last step and before the final test."""


def overriding(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks that override `hook` (so the loop skips the others for free)."""
    base = getattr(Callback, hook)
    return [cb for cb in callbacks if getattr(type(cb), hook) is not base]
