"""Every recipe shipped in recipes/ is a valid recipe (checked whole, as `netshrink run` does)."""

from pathlib import Path

import pytest

from netshrink.recipes import load_recipe
from netshrink.yamlfile import read_yaml

SHIPPED = Path(__file__).parents[2] / "recipes"
RECIPES = sorted(p for p in SHIPPED.rglob("*.yaml")
                 if isinstance(read_yaml(p), dict) and "stages" in read_yaml(p))


@pytest.mark.parametrize("path", RECIPES, ids=[p.relative_to(SHIPPED).as_posix()
                                               for p in RECIPES])
def test_shipped_recipe_is_valid(path):
    recipe = load_recipe(path)
    assert recipe.stages
