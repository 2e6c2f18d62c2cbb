"""Training-step time of a masked (90% pruned) model against the same dense model (target <= 1.15).

    PYTHONPATH=src python benchmarks/bench_prune_mask_overhead.py [--repeats 200] [--threads 1]

One training step = forward, cross-entropy, backward, optimizer step (SGD with momentum, or
Adam), on a fixed batch: LeNet-300-100 at batch 60 (the Lottery Ticket paper's setting) and
LeNet-5 at batch 128. The dense model, the model masked by netshrink (a parametrization: every
read of a weight is `original * mask`) and, as a control, the same pruned model squashed (its
zeros as plain weights, no mask: what the zeros alone cost) are timed in turns (A B C, then
B C A, ...) so that load from elsewhere on the machine hits every side alike; medians of
`repeats` steps each and the ratios to dense are printed and written beside this file as JSON.

A control times Adam's step alone on the same weights with dense gradients and with 90% exactly
zero gradients (no masks at all): on CPUs where sqrt(0) is slow, Adam pays for the zero second
moments of pruned weights whatever masks them; that part of the ratio is not the mask's. A
second control times torch.sqrt alone on ordinary values and on 90% zeros.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from netshrink import models
from netshrink.prune import prune_, squash_

HERE = Path(__file__).resolve().parent


def squashed_copy(model: nn.Module) -> nn.Module:
    """The same pruned model with its zeros as plain weights and no mask."""
    plain = copy.deepcopy(model)
    squash_(plain)
    return plain


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4),
}


def stepper(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: str):
    opt = OPTIMIZERS[optimizer](model.parameters())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def time_sides(sides: dict, repeats: int, warmup: int) -> dict[str, float]:
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    names = list(sides)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            sides[name]()
            samples[name].append(time.perf_counter() - t0)
    return {n: statistics.median(s) for n, s in samples.items()}


def case(name: str, batch: int, optimizer: str, repeats: int, warmup: int, sparsity: float
         ) -> dict:
    torch.manual_seed(0)
    dense = models.create(name)
    masked = copy.deepcopy(dense)
    prune_(masked, "magnitude", sparsity=sparsity)
    zeros = squashed_copy(masked)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    medians = time_sides({"dense": stepper(dense, x, y, optimizer),
                          "netshrink mask": stepper(masked, x, y, optimizer),
                          "zeros, no mask": stepper(zeros, x, y, optimizer)}, repeats, warmup)
    return {"model": name, "batch": batch, "optimizer": optimizer, "sparsity": sparsity,
            "repeats": repeats, "median_seconds": medians,
            "ratio_mask": medians["netshrink mask"] / medians["dense"],
            "ratio_zeros": medians["zeros, no mask"] / medians["dense"]}


def adam_zero_gradient_control(repeats: int, sparsity: float) -> dict:
    """Adam's step alone on LeNet-300-100's weights: dense gradients vs 90% exactly zero."""
    torch.manual_seed(0)
    shapes = [p.shape for p in models.create("lenet300").parameters()]
    sides = {}
    for label in ("dense gradients", "zero gradients"):
        params = [nn.Parameter(torch.randn(s)) for s in shapes]
        for p in params:
            keep = (torch.rand(p.shape) > sparsity).float()
            p.grad = torch.randn(p.shape) * (keep if label == "zero gradients" else 1.0)
        sides[label] = torch.optim.Adam(params, lr=1e-3).step
    medians = time_sides(sides, repeats, 5)
    return {"median_seconds": medians,
            "ratio": medians["zero gradients"] / medians["dense gradients"]}


def sqrt_zero_control(repeats: int, sparsity: float) -> dict:
    """torch.sqrt alone on LeNet-300-100's weight count: ordinary values vs 90% exact zeros."""
    torch.manual_seed(0)
    values = torch.rand(sum(p.numel() for p in models.create("lenet300").parameters())) + 0.5
    zeros = values * (torch.rand(values.shape) > sparsity)
    medians = time_sides({"values": lambda: torch.sqrt(values),
                          "zeros": lambda: torch.sqrt(zeros)}, repeats, 5)
    return {"median_seconds": medians, "ratio": medians["zeros"] / medians["values"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [case(name, batch, optimizer, args.repeats, args.warmup, args.sparsity)
               for name, batch in (("lenet300", 60), ("lenet5", 128))
               for optimizer in OPTIMIZERS]
    control = adam_zero_gradient_control(args.repeats, args.sparsity)
    sqrt_control = sqrt_zero_control(args.repeats, args.sparsity)
    for r in results:
        m = r["median_seconds"]
        print(f"{r['model']:9s} batch {r['batch']:3d} {r['optimizer']:4s}: dense "
              f"{1e3 * m['dense']:.2f} ms, "
              f"netshrink mask {1e3 * m['netshrink mask']:.2f} ms (ratio {r['ratio_mask']:.3f}"
              f"{' <= 1.15 ok' if r['ratio_mask'] <= 1.15 else ' > 1.15 MISSED'}), "
              f"zeros without a mask {1e3 * m['zeros, no mask']:.2f} ms (ratio "
              f"{r['ratio_zeros']:.3f})")
    m = control["median_seconds"]
    print(f"control: Adam step alone on LeNet-300-100 weights, no masks: dense gradients "
          f"{1e3 * m['dense gradients']:.2f} ms, {args.sparsity:.0%} zero gradients "
          f"{1e3 * m['zero gradients']:.2f} ms (ratio {control['ratio']:.3f})")
    m = sqrt_control["median_seconds"]
    print(f"control: torch.sqrt alone, same element count: ordinary values "
          f"{1e6 * m['values']:.0f} us, {args.sparsity:.0%} zeros {1e6 * m['zeros']:.0f} us "
          f"(ratio {sqrt_control['ratio']:.2f})")
    payload = {"threads": args.threads, "machine": platform.processor() or platform.machine(),
               "torch": torch.__version__, "results": results, "adam_control": control,
               "sqrt_control": sqrt_control}
    (HERE / "bench_prune_mask_overhead.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
