"""Unstructured pruning: masks, scores, schedules, lottery tickets.

    mask = netshrink.prune_(model, "magnitude", sparsity=0.9)
    netshrink.prune.density(model)            # 0.1
    print(netshrink.prune.format_report(netshrink.prune.report(model)))
    netshrink.prune.squash_(model)            # permanent: plain weights with zeros

Pruned weights read exactly zero wherever they are read: in training (netshrink's loop or
yours, any optimizer), deep copies, module swaps, files (see netshrink.core.masks for how).
"""

from netshrink.prune.api import LayerCollapseError, prune_, score_weights
from netshrink.prune.config import PruneConfig, target_sparsity
from netshrink.prune.lottery import LotteryConfig, LotteryResult, find_ticket
from netshrink.prune.mask import (
    LayerDensity,
    Mask,
    apply_mask,
    current_mask,
    density,
    format_report,
    mask_zeros_,
    masked_parameters,
    prunable,
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
from netshrink.prune.structured import (
    StructuredCollapseError,
    StructuredConfig,
    StructuredResult,
)

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
    "PruneConfig",
    "Random",
    "RoundResult",
    "Score",
    "StructuredCollapseError",
    "StructuredConfig",
    "StructuredResult",
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
    "masked_parameters",
    "prunable",
    "prune_",
    "report",
    "round_sparsity",
    "score_weights",
    "squash_",
    "target_sparsity",
]
