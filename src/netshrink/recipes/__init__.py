"""Recipes: stages applied in order (train, prune, distill, quantize, fine-tune, export, ...),
each the config of the Python API, checked before anything runs, resumable stage by stage.

    result = netshrink.run("recipes/lenet5-prune-distill-int8.yaml", "runs/lenet5")
    print(result.row("quantize")["test_accuracy"])

From the command line: `netshrink run RECIPE.yaml --out DIR`. See schema.py for the format,
runner.py for the folder layout and resumption, stages.py for the kinds of stage.
"""

from netshrink.recipes.runner import RunResult, load_recipe, run
from netshrink.recipes.schema import Recipe, Stage, parse

__all__ = ["Recipe", "RunResult", "Stage", "load_recipe", "parse", "run"]
