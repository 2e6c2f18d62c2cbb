"""How the distilled Deep Compression settings' T and alpha were chosen: on validation only.

For LeNet-300-100 on Fashion-MNIST, seed 0, the reproduction's own trial of netshrink's
distilled settings (deep_compression.DISTILLED: the paper's densities, then the sparser ones,
every retraining and the centroid fine-tuning distilled from the dense net) is run with each
candidate (T, alpha), and the model loaded back from each setting's final .nsz file is scored
on the validation split (5,000 held-out training images; test accuracy is printed beside, not
used). The reproduction then runs the chosen pair on every seed and data set.

    NETSHRINK_DATA=/work/shared/data PYTHONPATH=src python \
        benchmarks/deep_compression_distill_choice.py [--workers 2]

Writes choices.csv and config.json into --out.
"""

from __future__ import annotations

import argparse
import copy
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import netshrink
from netshrink import data as datasets
from netshrink.bench.report import write_csv
from netshrink.bench.tasks.pack import deep_compression_task
from netshrink.fileio import atomic_write
from netshrink.reproduce import ReproOptions
from netshrink.reproduce import deep_compression as dc
from netshrink.train import evaluate

CANDIDATES = ((4.0, 0.9), (2.0, 0.7), (1.0, 0.5))
NET, DATA, SEED = "lenet300", "fashion-mnist", 0


def candidate_spec(temperature: float, alpha: float):
    """The reproduction's distilled trial of NET on DATA, seed SEED, at this (T, alpha)."""
    options = ReproOptions(out=Path("."), data=(DATA,), seeds=(SEED,))
    specs = [t for t in dc.stages(dc.settings(options), options)[0]
             if t.model == NET and t.data == DATA and t.seed == SEED
             and "distill" in t.params["settings"][0]]
    spec = copy.deepcopy(specs[0])
    for setting in spec.params["settings"]:
        setting["distill"] = {"temperature": temperature, "alpha": alpha}
    return spec


def run_candidate(args: tuple[float, float, str]) -> dict:
    temperature, alpha, folder = args
    work = Path(folder) / f"T{temperature:g}-a{alpha:g}"
    work.mkdir(parents=True, exist_ok=True)
    spec = candidate_spec(temperature, alpha)
    metrics = deep_compression_task(spec, work)
    splits = datasets.load(DATA, seed=SEED)
    row = {"temperature": temperature, "alpha": alpha,
           "dense_test": metrics["dense_accuracy"]}
    for setting in spec.params["settings"]:
        tag = setting["name"]
        loaded = netshrink.load(work / f"{tag}_coded.nsz")
        row[f"{tag}_val"] = evaluate(loaded, splits.val)[1]
        row[f"{tag}_test"] = metrics[f"{tag}_coded_accuracy"]
        row[f"{tag}_ratio"] = metrics["dense_bytes"] / metrics[f"{tag}_coded_bytes"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/deep-compression-distill-choice")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(t, a, str(out)) for t, a in CANDIDATES]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_candidate, jobs))
    key = "sparser_distilled_val"
    best = max(rows, key=lambda r: r[key])
    for r in rows:
        print(f"T={r['temperature']:g} alpha={r['alpha']:g}: " + ", ".join(
            f"{k} {100 * v:.2f}" if k.endswith(("_val", "_test")) else f"{k} {v:.1f}"
            for k, v in r.items() if k not in ("temperature", "alpha")))
    print(f"chosen on validation ({key}): T={best['temperature']:g}, alpha={best['alpha']:g}")
    write_csv(rows, out / "choices.csv")
    atomic_write(out / "config.json", json.dumps(
        {"net": NET, "data": DATA, "seed": SEED, "candidates": CANDIDATES,
         "chosen_by": key, "chosen": [best["temperature"], best["alpha"]]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
