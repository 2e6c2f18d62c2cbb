"""netshrink: make PyTorch networks small and fast, and prove what it bought.

The public verbs live here (prune_, quantize_, distill, share_, save, load); each family has
its own subpackage (data, models, train, measure, prune, quant, distill, pack, bench).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# distill is a callable module: netshrink.distill(student, teacher, data, config, train_config)
from netshrink import data, distill, measure, models, pack, prune, train
from netshrink.errors import NetshrinkError
from netshrink.pack import share_
from netshrink.prune import prune_
from netshrink.quant import quantize_
from netshrink.serialize import load, save

if TYPE_CHECKING:
    from netshrink.recipes.runner import RunResult
    from netshrink.recipes.schema import Recipe


def run(
    recipe: Recipe | dict | str | os.PathLike,
    out: str | os.PathLike,
    **options: Any,
) -> RunResult:
    """Run a recipe (a YAML path, a mapping or a Recipe) into folder `out`; see
    netshrink.recipes.run (imported here on first use: recipes read YAML)."""
    from netshrink.recipes import run as run_recipe

    return run_recipe(recipe, out, **options)


__all__ = ["NetshrinkError", "__version__", "data", "distill", "load", "measure", "models",
           "pack", "prune", "prune_", "quantize_", "run", "save", "share_", "train"]
