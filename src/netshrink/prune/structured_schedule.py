"""Iterative structured pruning: remove a share of the units, fine-tune, repeat.

    rounds = iterative_structured(model, StructuredConfig(sparsity=0.5), splits,
                                  TrainConfig(epochs=1), steps=3, distill=DistillConfig())

Each of the `steps` rounds removes the same fraction of what is left, 1 - (1 - s)^(1/steps),
so the rounds together remove about `sparsity` of every group (each round rounds down per
group). Between rounds the model is fine-tuned on the labels, or distilled from a copy of the
unpruned model (netshrink.distill) when `distill` is given.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from torch import nn

from netshrink.data import Splits
from netshrink.errors import NetshrinkError
from netshrink.prune.structured import StructuredConfig, StructuredResult, prune_structured
from netshrink.train import TrainConfig, fit

if TYPE_CHECKING:
    from netshrink.distill.config import DistillConfig


def per_step(sparsity: float, steps: int) -> float:
    """The fraction removed at each of `steps` rounds that together remove `sparsity`."""
    return 1.0 - (1.0 - sparsity) ** (1.0 / steps)


def iterative_structured(
    model: nn.Module,
    config: StructuredConfig,
    splits: Splits,
    train_config: TrainConfig,
    steps: int = 1,
    distill: DistillConfig | None = None,
    **prune_options: Any,
) -> list[tuple[StructuredResult, object]]:
    """[(what round k removed, its fine-tuning's TrainResult)] for k = 1..steps.

    distill: a DistillConfig to fine-tune by distillation from the unpruned model (a copy
    taken before the first round), None to fine-tune on the labels.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise NetshrinkError(f"steps={steps!r} must be a positive integer")
    if not isinstance(splits, Splits):
        raise NetshrinkError("iterative_structured fine-tunes: data must be a Splits "
                             "(netshrink.data.load or netshrink.data.from_tensors)")
    teacher = copy.deepcopy(model).eval() if distill is not None else None
    step_config = replace(config, sparsity=per_step(config.sparsity, steps),
                          layers={k: per_step(v, steps) for k, v in config.layers.items()})
    rounds = []
    for _ in range(steps):
        result = prune_structured(model, step_config, splits, **prune_options)
        if teacher is None:
            trained = fit(model, splits, train_config, progress=False)
        else:
            from netshrink.distill import distill as run_distill

            trained = run_distill(model, teacher, splits, distill, train_config,
                                  progress=False)
        rounds.append((result, trained))
    return rounds
