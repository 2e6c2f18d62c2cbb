"""How the demo's two free settings were chosen: on the validation split, never on test.

1. The distilled student's temperature T and soft-target weight alpha: the 784-100-10 MLP
   distilled from the dense LeNet-300-100 at T in {1, 2, 4} x alpha in {0.5, 0.9}, beside
   the same student trained alone on the labels.
2. The combined row's unstructured rates (fc1, fc2, fc3) after half the hidden neurons are
   removed, each ending in int8 or in 4-bit weight sharing (Deep Compression's codebooks),
   both written as .nsz files; the candidates are those at least 40x smaller than the dense
   file (the issue's bar), and the best validation accuracy among them is chosen.

Every candidate is a demo recipe (netshrink.demo.recipes with that one setting changed) run
through netshrink.run on the demo's own stage folder, so the dense model trains once and the
chosen rows are the very stages `netshrink demo` then reuses. Validation: the 5,000 held-out
training images of netshrink.data (test accuracy is printed beside, not used). Writes
choices.csv and config.json into --out (docs/results/demo/choices.csv and choices_config.json
are a copy).

    PYTHONPATH=src python benchmarks/demo_choices.py        # after (or instead of) netshrink demo
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

import netshrink
from netshrink import demo
from netshrink.bench.report import write_csv
from netshrink.fileio import atomic_write
from netshrink.train import evaluate

TEMPERATURES = (1.0, 2.0, 4.0)
ALPHAS = (0.5, 0.9)
RATES = ((0.9, 0.8, 0.5), (0.88, 0.8, 0.5), (0.85, 0.75, 0.5), (0.85, 0.7, 0.4),
         (0.8, 0.7, 0.4), (0.8, 0.6, 0.3))
TAILS = ("int8", "share4")
MIN_SMALLER = 40.0


def student_candidates(plan: dict) -> dict[str, dict]:
    out = {"alone": plan["student alone"]}
    for t in TEMPERATURES:
        for alpha in ALPHAS:
            recipe = copy.deepcopy(plan["student distilled"])
            recipe["name"] = f"distilled-T{t:g}-a{alpha:g}"
            recipe["stages"][0]["distill"].update(temperature=t, alpha=alpha)
            out[f"T={t:g}, alpha={alpha:g}"] = recipe
    return out


def combined_candidates(epochs: float, seed: int) -> dict[str, dict]:
    out = {}
    for rates in RATES:
        for tail in TAILS:
            layers = dict(zip(("1", "3", "5"), rates, strict=True))
            name = f"combined-{'-'.join(map(str, rates))}-{tail}"
            out[f"rates {rates}, {tail}"] = demo.combined_recipe(layers, tail, name, epochs,
                                                                 seed)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-choices"))
    parser.add_argument("--stages", type=Path, default=Path("runs/demo/stages"),
                        help="the demo's stage folder (shared: the dense model trains once)")
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    val = netshrink.data.load("fashion-mnist", seed=args.seed).val

    def val_accuracy(path: str) -> float:
        return evaluate(netshrink.load(path), val)[1]

    dense = netshrink.run(demo.recipes(args.epochs, args.seed)["dense float32"],
                          args.out / "dense", stages=args.stages, measure=False)
    teacher = dense.row("train")["file"]
    plan = demo.recipes(args.epochs, args.seed, teacher=teacher)
    dense_bytes, dense_val = dense.rows[-1]["bytes"], val_accuracy(teacher)
    rows, chosen = [], {}
    for part, candidates in (("student", student_candidates(plan)),
                             ("combined", combined_candidates(args.epochs, args.seed))):
        for label, recipe in candidates.items():
            result = netshrink.run(recipe, args.out / recipe["name"], stages=args.stages,
                                   measure=False)
            last = result.rows[-1]
            row = {"part": part, "candidate": label, "val_accuracy": val_accuracy(last["file"]),
                   "test_accuracy": last["test_accuracy"], "file_bytes": last["bytes"],
                   "x_smaller": dense_bytes / last["bytes"]}
            row["val_change"] = row["val_accuracy"] - dense_val
            rows.append(row)
            print(f"{part:8s} {label:32s} val {100 * row['val_accuracy']:.2f}% "
                  f"({100 * row['val_change']:+.2f})  test {100 * row['test_accuracy']:.2f}%  "
                  f"{row['file_bytes']:,d} bytes ({row['x_smaller']:.1f}x)", flush=True)
        eligible = [r for r in rows if r["part"] == part
                    and (part == "student" or r["x_smaller"] >= MIN_SMALLER)]
        chosen[part] = max(eligible, key=lambda r: r["val_accuracy"])["candidate"]
        print(f"chosen on validation ({part}): {chosen[part]}")
    write_csv(rows, args.out / "choices.csv")
    atomic_write(args.out / "config.json", json.dumps(
        {"epochs": args.epochs, "seed": args.seed, "temperatures": TEMPERATURES,
         "alphas": ALPHAS, "rates": RATES, "tails": TAILS, "min_smaller": MIN_SMALLER,
         "dense_val_accuracy": dense_val, "chosen": chosen}, indent=2) + "\n")


if __name__ == "__main__":
    main()
