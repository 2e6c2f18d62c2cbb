"""The sweep task "quantization": train a float model, then quantize it two ways, and measure.

One trial = one model and seed: train in float32 (spec.train; trials of a sweep that differ
only in how they quantize share it, cached in the sweep's float_models/), post-training
static quantization (params["ptq"]: Static fields), quantization-aware training from the float
weights (params["qat"]: QAT fields; params["qat_epochs"], params["qat_lr"]), then top-1
accuracy, latency (float and integer models timed alternately, one thread) and file size of
each. Training runs on one torch thread: on a shared machine a second OpenMP thread mostly
waits.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path

import torch

import netshrink
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import build, task
from netshrink.fileio import atomic_write
from netshrink.quant.api import convert
from netshrink.quant.config import QAT, Static


def _latency(models: dict, example: torch.Tensor, repeats: int) -> dict:
    from netshrink import measure

    stats = measure.compare_latency({k: (lambda m=m: m(example)) for k, m in models.items()},
                                    repeats=repeats, warmup=3, num_threads=1)
    return {k: 1000 * s.median for k, s in stats.items()}


def _float_key(spec: TrialSpec) -> str:
    """Trials that differ only in how they quantize share the float training."""
    fields = {k: v for k, v in spec.to_dict().items() if k not in ("task", "params")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _trained_float(spec: TrialSpec, model, splits, config, workdir: Path):
    """The float model trained as the spec says, from the sweep's cache when it is there."""
    from netshrink.train import fit

    cache = None
    if workdir.parent.name == "trials":
        cache = workdir.parent.parent / "float_models" / _float_key(spec)
        if (cache / "float32.safetensors").is_file() and (cache / "train.json").is_file():
            seconds = json.loads((cache / "train.json").read_text())["train_seconds"]
            return netshrink.load(cache / "float32.safetensors"), seconds
    start = time.perf_counter()
    fit(model, splits, config, log_csv=workdir / "float_log.csv", progress=False)
    seconds = time.perf_counter() - start
    if cache is not None:
        netshrink.save(model, cache / "float32.safetensors")
        atomic_write(cache / "train.json", json.dumps({"train_seconds": seconds,
                                                       "spec": spec.to_dict()}))
    return model, seconds


@task("quantization")
def quantization_task(spec: TrialSpec, workdir: Path) -> dict:
    from netshrink.train import TrainConfig, evaluate, fit

    torch.set_num_threads(1)
    params = spec.params
    splits, model, config = build(spec)
    model, train_seconds = _trained_float(spec, model, splits, config, workdir)
    model.eval()
    files = {"float": netshrink.save(model, workdir / "float32.safetensors")}
    accuracy = {"float": evaluate(model, splits.test)[1]}

    ptq = copy.deepcopy(model)
    netshrink.quantize_(ptq, Static(**params.get("ptq", {})), data=splits)
    accuracy["ptq"] = evaluate(ptq, splits.test)[1]
    files["ptq"] = netshrink.save(ptq, workdir / "ptq_int8.safetensors")

    qat = copy.deepcopy(model)
    netshrink.quantize_(qat, QAT(**params.get("qat", {})), data=splits)
    qat_config = TrainConfig.from_dict({**config.to_dict(), "epochs": params.get("qat_epochs", 1),
                                        "lr": params.get("qat_lr", config.lr / 10),
                                        "iterations": None})
    start = time.perf_counter()
    fit(qat, splits, qat_config, log_csv=workdir / "qat_log.csv", progress=False)
    qat_seconds = time.perf_counter() - start
    accuracy["qat_fake"] = evaluate(qat.eval(), splits.test)[1]
    convert(qat)
    accuracy["qat"] = evaluate(qat, splits.test)[1]
    files["qat"] = netshrink.save(qat, workdir / "qat_int.safetensors")

    x = splits.test.tensors[0]
    models = {"float": model, "ptq": ptq, "qat": qat}
    repeats = params.get("latency_repeats", 30)
    one = _latency(models, x[:1], repeats)
    batch = _latency(models, x[:256], max(5, repeats // 3))
    first = next(m for m in ptq.modules() if hasattr(m, "activation"))
    metrics = {"train_seconds": train_seconds, "qat_seconds": qat_seconds,
               "ptq_activation_bits": first.activation.bits}
    for name in ("float", "ptq", "qat"):
        metrics[f"{name}_top1"] = accuracy[name]
        metrics[f"{name}_latency_ms_b1"] = one[name]
        metrics[f"{name}_latency_ms_b256"] = batch[name]
        metrics[f"{name}_bytes"] = files[name].stat().st_size
    metrics["qat_fake_top1"] = accuracy["qat_fake"]
    return metrics
