"""Step time of netshrink's training loop against a bare hand-written PyTorch loop.

Same model, same initial weights, same batches (same shuffling generator), same optimizer, in one
process, alternating the two sides (A B A B ...), 2 threads. Prints the median seconds per step
of each side and their ratio (target: at most 1.05), and writes the numbers to JSON.

    python benchmarks/bench_train_loop.py [--rounds 7] [--iterations 300]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from netshrink import data, models
from netshrink.train import TrainConfig, fit


def bare_loop(model, dataset, config: TrainConfig) -> float:
    """The loop a user would write by hand; returns seconds spent in the steps."""
    x_all, y_all = dataset.tensors
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    steps, start = 0, time.perf_counter()
    while steps < config.iterations:
        order = torch.randperm(len(x_all), generator=generator)
        for i in range(0, len(x_all), config.batch_size):
            idx = order[i : i + config.batch_size]
            x, y = x_all[idx], y_all[idx]
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == config.iterations:
                break
    return time.perf_counter() - start


def ours(model, splits, config: TrainConfig) -> float:
    return fit(model, splits, config, progress=False).seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", default="runs/bench/train_loop.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    splits = data.load("fashion-mnist", val_size=0)
    results = []
    for name, batch in (("lenet300", 60), ("lenet5", 128)):
        torch.manual_seed(0)
        initial = models.create(name)
        config = TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=batch,
                             iterations=args.iterations, eval_every=10**9, device="cpu")
        times = {"netshrink": [], "bare": []}
        ours(copy.deepcopy(initial), splits, config)  # warm-up of both sides
        bare_loop(copy.deepcopy(initial), splits.train, config)
        for _ in range(args.rounds):
            times["netshrink"].append(ours(copy.deepcopy(initial), splits, config))
            times["bare"].append(bare_loop(copy.deepcopy(initial), splits.train, config))
        per_step = {k: statistics.median(v) / args.iterations for k, v in times.items()}
        ratio = per_step["netshrink"] / per_step["bare"]
        ratios = sorted(a / b for a, b in zip(times["netshrink"], times["bare"], strict=True))
        results.append({"model": name, "batch_size": batch, "iterations": args.iterations,
                        "rounds": args.rounds, "threads": 2,
                        "netshrink_ms_per_step": 1000 * per_step["netshrink"],
                        "bare_ms_per_step": 1000 * per_step["bare"], "ratio": ratio,
                        "round_ratio_min": ratios[0], "round_ratio_max": ratios[-1]})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'model':10s} {'batch':>5s} {'netshrink ms':>13s} {'bare ms':>9s} {'ratio':>6s}"
          f"  (per-round ratio range)")
    for r in results:
        print(f"{r['model']:10s} {r['batch_size']:5d} {r['netshrink_ms_per_step']:13.3f} "
              f"{r['bare_ms_per_step']:9.3f} {r['ratio']:6.3f}  "
              f"({r['round_ratio_min']:.3f}-{r['round_ratio_max']:.3f})")
    print(f"target: ratio <= 1.05; full numbers in {out}")


if __name__ == "__main__":
    main()
