"""Unstructured pruning: masks, scores, schedules, lottery tickets.

    mask = netshrink.prune_(model, "magnitude", sparsity=0.9)
    netshrink.prune.density(model)            # 0.1
    print(netshrink.prune.format_report(netshrink.prune.report(model)))
    netshrink.prune.squash_(model)            # permanent: plain weights with zeros

Pruned weights stay exactly zero through training, in `netshrink.train.fit` and in a plain
PyTorch loop with any torch optimizer (see netshrink.prune.mask for how).
"""

from netshrink.prune.api import LayerCollapseError, prune_, target_sparsity
from netshrink.prune.lottery import LotteryConfig, LotteryResult, find_ticket
from netshrink.prune.mask import (
    TRANSFORM_KIND,
    LayerDensity,
    Mask,
    apply_mask,
    current_mask,
    density,
    format_report,
    mask_zeros_,
    prunable,
    replay_transform,
    report,
    squash_,
)
from netshrink.prune.schedule import (
    GradualPruning,
    RoundResult,
    cubic_sparsity,
    iterative_prune,
    round_sparsity,
)
from netshrink.prune.scores import (
    METHODS,
    OBD,
    SNIP,
    GraSP,
    Magnitude,
    Random,
    Score,
    SynFlow,
    Taylor,
)
from netshrink.serialize import register_transform

register_transform(TRANSFORM_KIND, replay_transform)

__all__ = [
    "METHODS",
    "OBD",
    "SNIP",
    "GraSP",
    "GradualPruning",
    "LayerCollapseError",
    "LayerDensity",
    "LotteryConfig",
    "LotteryResult",
    "Magnitude",
    "Mask",
    "Random",
    "RoundResult",
    "Score",
    "SynFlow",
    "Taylor",
    "apply_mask",
    "cubic_sparsity",
    "current_mask",
    "density",
    "find_ticket",
    "format_report",
    "iterative_prune",
    "mask_zeros_",
    "prunable",
    "prune_",
    "report",
    "round_sparsity",
    "squash_",
    "target_sparsity",
]
