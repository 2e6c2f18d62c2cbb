"""`netshrink run RECIPE.yaml --out DIR`: run a recipe's stages in order, resumably."""

from __future__ import annotations

import argparse


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a recipe: stages (train, prune, distill, quantize, ...) in order",
        description="Run the stages of a recipe file in order into --out. Every stage is "
                    "checked before anything runs; a finished stage is not run again, so a "
                    "run that was stopped resumes where it was. Writes the resolved recipe, "
                    "each stage's model and result, and results.md / .csv / .json.")
    p.add_argument("recipe", help="a recipe YAML file (see recipes/)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--check", action="store_true",
                   help="only check the recipe and print its resolved stages")
    p.add_argument("--no-measure", action="store_true", help="skip the latency measurement")
    p.set_defaults(run=run_recipe)


def run_recipe(args: argparse.Namespace) -> int:
    import json

    from netshrink.recipes import load_recipe, run

    recipe = load_recipe(args.recipe)
    if args.check:
        print(json.dumps(recipe.to_dict(), indent=2))
        return 0
    result = run(recipe, args.out, measure=not args.no_measure)
    print((result.out / "results.md").read_text(), end="")
    print(f"wrote {result.out / 'results.md'}, results.csv, results.json")
    return 0
