"""Top-1 of netshrink's int8 programs against float32, on trained Fashion-MNIST models.

    PYTHONPATH=src python benchmarks/bench_int8_accuracy.py [--epochs 6 6 2] [--models ...]

LeNet-300-100, LeNet-5 and ResNet-20 trained on Fashion-MNIST (seed 0; Adam 1e-3, batch 128,
cosine schedule, as the quantization reproduction trains them; the default budget is that
reproduction's scaled-down one: 6, 6 and 2 epochs), quantized post-training with Static()
(8-bit per-channel weights, inputs calibrated with the mse observer on 2,048 training images;
7-bit inputs on x86 CPUs without VNNI) and compiled with netshrink.quant.compile_int8 on each
runtime and choice of kernels (torch: oneDNN, fbgemm for the Linear layers; onnxruntime:
integer, float, mixed); every side is evaluated on the 10,000 test images.
A trained float model is kept in --cache and reused by the next run. Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

import netshrink
from netshrink import data as datasets
from netshrink.fileio import atomic_write
from netshrink.models import registry
from netshrink.quant import Static, compile_int8
from netshrink.quant.int8.onnx_backend import KERNELS
from netshrink.quant.int8.torch_backend import KERNELS as TORCH_KERNELS
from netshrink.train import TrainConfig, fit

MODELS = {"LeNet-300-100": ("lenet300", {}), "LeNet-5": ("lenet5", {}),
          "ResNet-20": ("resnet", {"depth": 20, "width": 16})}
DEFAULT_EPOCHS = (6, 6, 2)


def top1(fn, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            correct += int((fn(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images)


def trained(name: str, builder: tuple, epochs: float, splits, cache: Path):
    """The float model, trained (or read back from the cache); (model, seconds trained)."""
    file = cache / f"{builder[0]}_{epochs}ep_seed0.safetensors"
    if file.is_file():
        return netshrink.load(file).eval(), 0.0
    torch.manual_seed(0)
    model = registry.create(builder[0], input_shape=(1, 28, 28), num_classes=10, **builder[1])
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=128, epochs=epochs,
                         lr_schedule="cosine", device="cpu", seed=0)
    start = time.perf_counter()
    fit(model, splits, config, progress=False)
    seconds = time.perf_counter() - start
    netshrink.save(model.eval(), file)
    print(f"{name}: trained {epochs} epochs in {seconds / 60:.1f} min", flush=True)
    return model, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", nargs="*", type=float, default=list(DEFAULT_EPOCHS),
                        help="training epochs, one per model in --models order")
    parser.add_argument("--train-threads", type=int, default=1)
    parser.add_argument("--cache", default="runs/bench/int8_accuracy")
    parser.add_argument("--out", default="runs/bench/int8_accuracy.json")
    args = parser.parse_args(argv)
    if len(args.epochs) != len(args.models):
        parser.error(f"--epochs takes one number per model ({len(args.models)})")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    splits = datasets.load("fashion-mnist")
    images, labels = splits.test.tensors[0], splits.test.tensors[1]
    rows = {}
    print("| model | epochs | float32 | Static (integer modules) | int8 program: torch | "
          "torch, fbgemm kernels | onnxruntime | onnxruntime, float kernels | "
          "onnxruntime, mixed kernels | worst program - float32 (points) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, epochs in zip(args.models, args.epochs, strict=True):
        torch.set_num_threads(args.train_threads)
        model, seconds = trained(name, MODELS[name], epochs, splits, cache)
        torch.set_num_threads(2)
        quantized = copy.deepcopy(model)
        netshrink.quantize_(quantized, Static(observer="mse"), data=splits)
        sides = {"float32": model, "Static (integer modules)": quantized}
        for kernels in TORCH_KERNELS:
            compiled = compile_int8(quantized, images[:500], data=splits, runtime="torch",
                                    kernels=kernels)
            sides[f"int8 program ({compiled.variant})"] = compiled
        for kernels in KERNELS:
            compiled = compile_int8(quantized, images[:500], data=splits, runtime="onnxruntime",
                                    kernels=kernels)
            sides[f"int8 program ({compiled.variant})"] = compiled
        accuracy = {side: top1(fn, images, labels) for side, fn in sides.items()}
        worst = min(accuracy[k] for k in accuracy if k.startswith("int8 program"))
        rows[name] = {"epochs": epochs, "train_seconds": seconds, "top1": accuracy,
                      "worst_program_minus_float_points": 100 * (worst - accuracy["float32"])}
        cells = " | ".join(f"{100 * accuracy[k]:.2f}" for k in sides)
        print(f"| {name} | {epochs:g} | {cells} | "
              f"{rows[name]['worst_program_minus_float_points']:+.2f} |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
