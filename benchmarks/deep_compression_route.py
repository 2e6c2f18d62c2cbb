"""Does the route to LeNet-300-100's extreme densities matter? Straight from the dense net.

The reproduction (`netshrink reproduce deep-compression`) reaches its extreme setting (2% / 4% /
20% of the weights, 4-bit indices) gradually: the paper's densities in 3 rounds, the sparser
ones in 2, then the extreme ones in 2. This runs the same trials (same dense nets, same
retraining budget per round, 3 seeds, MNIST and Fashion-MNIST) reaching the sparser densities
straight from the dense net in 3 rounds ("sparser_direct"), then the extreme ones in 2: 2 rounds
fewer. Compare its table with the reproduction's (docs/results/deep_compression/results.md).

    NETSHRINK_DATA=/work/shared/data PYTHONPATH=src python \
        benchmarks/deep_compression_route.py [--workers 2] [--out DIR]

Each trial's result.json is kept in its folder (a finished trial is read back, not rerun);
route.md, route.csv and config.json in --out hold the trials finished so far.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from netshrink.bench.report import write_csv
from netshrink.bench.tasks.pack import deep_compression_in
from netshrink.fileio import atomic_write
from netshrink.reproduce import ReproOptions
from netshrink.reproduce import deep_compression as dc

NET = "lenet300"


def route_specs() -> list:
    """The reproduction's LeNet-300-100 trials (paper protocol) with the direct route."""
    options = ReproOptions(out=Path("."))
    specs = []
    for spec in dc.stages(dc.settings(options), options)[0]:
        if spec.model != NET or "distill" in spec.params["settings"][0]:
            continue
        spec = copy.deepcopy(spec)
        paper, sparser, extreme = spec.params["settings"]
        spec.params["settings"] = [{**sparser, "name": "sparser_direct",
                                    "rounds": paper["rounds"]}, extreme]
        specs.append(spec)
    return specs


def run_trial(args: tuple[int, str]) -> dict:
    index, folder = args
    return deep_compression_in(route_specs()[index], Path(folder))


def table(rows: list[dict]) -> list[dict]:
    """Per data set and setting: mean ratio and points lost against each trial's dense net."""
    out = []
    for data in sorted({r["data"] for r in rows}):
        group = [r for r in rows if r["data"] == data]
        for tag in ("sparser_direct", "extreme"):
            drops = [100 * (r["dense_accuracy"] - r[f"{tag}_coded_accuracy"]) for r in group]
            out.append({"data": data, "setting": tag, "seeds": len(group),
                        "density": statistics.mean(r[f"{tag}_density"] for r in group),
                        "ratio": statistics.mean(r["dense_bytes"] / r[f"{tag}_coded_bytes"]
                                                 for r in group),
                        "accuracy": statistics.mean(r[f"{tag}_coded_accuracy"] for r in group),
                        "drop": statistics.mean(drops),
                        "drop_std": statistics.stdev(drops) if len(drops) > 1 else 0.0})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/deep-compression-route")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = route_specs()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_trial, [(i, str(out)) for i in range(len(specs))]))
    summary = table(rows)
    lines = ["# LeNet-300-100's extreme densities reached straight from the dense net", "",
             "    PYTHONPATH=src python benchmarks/deep_compression_route.py", "",
             "ratio = dense float32 file / final .nsz file; accuracy: test, of the model loaded "
             "back from the .nsz file; drop: points lost against each trial's dense net (mean "
             "± std over seeds).", "",
             "| data | setting | density | ratio | accuracy | drop (points) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['setting']} | {100 * r['density']:.2f}% | {r['ratio']:.1f}x "
              f"| {100 * r['accuracy']:.2f}% | {r['drop']:+.2f} ± {r['drop_std']:.2f} |"
              for r in summary]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write(out / "route.md", text)
    write_csv(summary, out / "route.csv")
    atomic_write(out / "config.json", json.dumps(
        {"trials": [s.to_dict() for s in specs]},
        indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
