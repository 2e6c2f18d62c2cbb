"""Structured pruning, measured: netshrink against Torch-Pruning on the zoo's ResNet-20 and VGG.

    PYTHONPATH=src python benchmarks/bench_structured.py [--ratios 0.5 0.75] [--repeats 20]

Both engines prune the same initialized network (l1, layerwise, the output layer whole) at
each ratio; then the dense net and both pruned nets are timed in one run, alternating
(netshrink.prune.speedup.latency_rows: torch eager, TorchScript frozen and onnxruntime, batch 1
and 64, 28x28 inputs, 2 threads fixed). Latency does not depend on the weights' values, so no
training is needed here; accuracy after fine-tuning is `netshrink reproduce structured`'s job.
Prints the table with the CPU flags and the load average, and writes JSON beside.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import warnings
from pathlib import Path

import torch

import netshrink
from netshrink.fileio import atomic_write
from netshrink.measure import count_parameters, flops
from netshrink.prune import StructuredConfig
from netshrink.prune import torch_pruning as ntp
from netshrink.prune.speedup import format_rows, latency_rows
from netshrink.quant.kernels import cpu_flags

SHAPE = (1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet", "vgg"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.5, 0.75])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/bench_structured.json")
    args = parser.parse_args()
    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in
                     cpu_flags())
    print(f"{platform.processor() or platform.machine()}, flags: {flags or 'none listed'}; "
          f"{args.threads} threads; load average before {os.getloadavg()[0]:.2f}")
    rows, sizes = [], []
    gen = torch.Generator().manual_seed(0)
    for name in args.models:
        for ratio in args.ratios:
            torch.manual_seed(0)
            dense = netshrink.models.create(name, SHAPE, 10).eval()
            example = torch.rand(2, *SHAPE)
            ours, theirs = copy.deepcopy(dense), copy.deepcopy(dense)
            netshrink.prune_(ours, StructuredConfig(sparsity=ratio), example=example)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ntp.prune(theirs, example, ratio, "l1")
            models = {"dense": dense, "netshrink": ours, "Torch-Pruning": theirs}
            for side, model in models.items():
                sizes.append({"model": name, "ratio": ratio, "side": side,
                              "parameters": count_parameters(model),
                              "flops": flops(model, SHAPE)})
            found = latency_rows(models, lambda n: torch.rand(n, *SHAPE, generator=gen),
                                 threads=args.threads, repeats=args.repeats)
            rows += [{"net": name, "ratio": ratio, **r} for r in found]
            print(f"\n{name}, {ratio:.0%} of the channels removed (MACs ratio "
                  f"{sizes[-3]['flops'] / sizes[-2]['flops']:.2f}x is a count, not a speed-up)")
            print(format_rows(found))
    print(f"load average after {os.getloadavg()[0]:.2f}")
    atomic_write(Path(args.out), json.dumps({"threads": args.threads, "cpu_flags": flags,
                                             "latency": rows, "sizes": sizes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
