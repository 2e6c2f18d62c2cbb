"""The demo: train LeNet-300-100 on Fashion-MNIST, save it, and measure what it costs."""

from __future__ import annotations

from pathlib import Path

import torch

import netshrink
from netshrink import data, measure, models
from netshrink.train import TrainConfig, fit, seed_everything


def run(out: Path, epochs: float = 3.0, seed: int = 0) -> dict:
    """Train, save, reload, measure; print a short table and return its numbers."""
    splits = data.load("fashion-mnist", seed=seed)
    seed_everything(seed)
    model = models.create("lenet300", splits.input_shape, splits.num_classes)
    config = TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, epochs=epochs, seed=seed,
                         device="cpu")
    print(f"netshrink demo: LeNet-300-100 on {splits!r}, {epochs:g} epochs, seed {seed}")
    result = fit(model, splits, config, log_csv=out / "log.csv")
    path = netshrink.save(model, out / "lenet300.safetensors")
    reloaded = netshrink.load(path)
    x = splits.test.tensors[0][:256]
    same = torch.equal(model.eval()(x), reloaded.eval()(x))
    speed = measure.latency(reloaded, x, repeats=30, num_threads=2)
    row = {
        "test_accuracy": result.test_accuracy,
        "parameters": measure.count_parameters(model),
        "file_bytes": measure.file_size(path),
        "flops_per_example": measure.flops(model, splits.input_shape),
        "latency_ms_batch256": 1000 * speed.median,
        "reload_identical": same,
    }
    for key, value in row.items():
        print(f"  {key:22s} {value:,.4f}" if isinstance(value, float) else
              f"  {key:22s} {value}")
    return row
