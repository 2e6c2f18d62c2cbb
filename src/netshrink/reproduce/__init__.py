"""Reproductions of published results: `netshrink reproduce NAME [--full]`.

Each reproduction is a module here holding its protocol and its tables; reproduce.template runs
them all the same way (trials swept into OUT/sweep, resumable; OUT/config.json; OUT/results.md
with the paper's published figures beside ours and the failed trials listed; CSV and PNG). The
default run is scaled down to finish in about an hour on 2 cores and prints how; `--full` runs
the paper's protocol.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from netshrink.reproduce.template import Run


@dataclass(frozen=True)
class ReproOptions:
    """How to run a reproduction. seeds=None, data=None: the reproduction's own."""

    out: Path
    full: bool = False
    executor: str = "local"
    workers: int = 1
    seeds: tuple[int, ...] | None = None
    data: tuple[str, ...] | None = None


# name -> (module, one-line summary), in the order `netshrink reproduce --help` lists them
REPRODUCTIONS = {
    "obd": ("netshrink.reproduce.obd",
            "LeCun et al. 1990: Optimal Brain Damage vs magnitude deletion on a small network, "
            "before and after retraining"),
    "lottery": ("netshrink.reproduce.lottery",
                "Frankle & Carbin 2019: LeNet-300-100 lottery tickets vs random re-init and "
                "shuffled masks on MNIST and Fashion-MNIST"),
    "synflow": ("netshrink.reproduce.synflow",
                "Tanaka et al. 2020: Random, Magnitude, SNIP, GraSP, SynFlow at initialization "
                "on a small VGG and ResNet, compression 10^0..10^3, collapse"),
    "distillation": ("netshrink.reproduce.distillation",
                     "Hinton et al. 2015: soft targets, ensembles, an omitted class"),
    "quantization": ("netshrink.reproduce.quantization",
                     "TensorFlow Lite's float / PTQ / QAT table on Fashion-MNIST and MiniLM"),
    "structured": ("netshrink.reproduce.structured",
                   "Structured pruning (network slimming, Torch-Pruning beside): ResNet-20 and "
                   "VGG on Fashion-MNIST, accuracy against measured speed-up"),
    "transformer": ("netshrink.reproduce.transformer",
                    "all-MiniLM-L6-v2 distilled, pruned, int8 and 4-bit (GPTQ beside "
                    "round-to-nearest): bytes, latency and agreement on held-out sentences"),
    "deep-compression": ("netshrink.reproduce.deep_compression",
                         "Han et al. 2016: LeNet-300-100 and LeNet-5 pruned, shared and entropy "
                         "coded into .nsz files, stage by stage, on MNIST and Fashion-MNIST"),
}


def names() -> dict[str, str]:
    """{name: summary} of every reproduction."""
    return {name: summary for name, (_, summary) in REPRODUCTIONS.items()}


def run(name: str, options: ReproOptions) -> Run:
    """Run reproduction `name` with `options`; returns the template's Run."""
    from netshrink.reproduce import template

    if name not in REPRODUCTIONS:
        raise NetshrinkError(
            f"unknown reproduction {name!r}; choose from {', '.join(REPRODUCTIONS)}"
        )
    return template.run(name, importlib.import_module(REPRODUCTIONS[name][0]), options)
