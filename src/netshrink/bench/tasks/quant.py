"""The sweep task "quantization": train a float model, then quantize it two ways, and measure.

One trial = one model and seed: train in float32 (spec.train; trials of a sweep that differ
only in how they quantize share it, cached in the sweep's float_models/), post-training
static quantization (params["ptq"]: Static fields), quantization-aware training from the float
weights (params["qat"]: QAT fields; params["qat_epochs"], params["qat_lr"]), then top-1
accuracy, latency (float and integer models timed alternately, one thread; the integer models
as deployed: compiled by netshrink.quant.compile_int8 for each batch size on the fastest
runtime, which the metrics name) and file size of each. Training runs on one torch thread:
on a shared machine a second OpenMP thread mostly waits. Built on netshrink.quant's public API.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import netshrink
from netshrink import checks
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task, field_defaults, known_keys
from netshrink.bench.tasks.train import build
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write
from netshrink.quant import QAT, Static, convert

if TYPE_CHECKING:
    from torch import nn

DEFAULTS = {"ptq": {}, "qat": {}, "qat_epochs": 1, "qat_lr": None, "latency_repeats": 30}


def check_quantization(params: dict) -> None:
    """Refuse unknown params and PTQ / QAT settings the configs refuse, before the sweep."""
    known_keys(params, set(DEFAULTS), "quantization")
    for key, config in (("ptq", Static), ("qat", QAT)):
        try:
            config(**checks.mapping(params.get(key, {}), key))
        except (TypeError, NetshrinkError) as err:
            raise NetshrinkError(f"params.{key}: {err}") from None
    for key in ("qat_epochs", "qat_lr"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 < value < math.inf):
            raise NetshrinkError(f"params.{key}={value!r} must be a positive number")
    checks.positive_integer(params.get("latency_repeats", 30), "params.latency_repeats",
                            100_000)


def check_quantization_model(params: dict, model: nn.Module) -> None:
    """The skip patterns of ptq and qat must each name a layer of the trial's model."""
    from netshrink.core.patterns import check_patterns

    names = [n for n, _ in model.named_modules() if n]
    for key in ("ptq", "qat"):
        check_patterns(params.get(key, {}).get("skip", ()), names, f"params.{key}.skip")


def resolve_quantization(params: dict) -> dict:
    """Defaults filled in, the Static and QAT fields too (qat_lr None: the float lr / 10)."""
    out = {**DEFAULTS, **params}
    out["ptq"] = {**field_defaults(Static), **out["ptq"]}
    out["qat"] = {**field_defaults(QAT), **out["qat"]}
    out["qat_epochs"] = float(out["qat_epochs"])
    return out


def _latency(models: dict, example: torch.Tensor, repeats: int, splits
             ) -> tuple[dict, dict, dict]:
    """Median ms of each model as deployed at this batch size (see as_deployed), timed
    alternately; ({name: ms}, {name: runtime}, {name: what it ran as, compiled or not})."""
    from netshrink import measure
    from netshrink.quant.int8 import as_deployed

    deployed = {k: as_deployed(m, example, data=splits, threads=1, repeats=repeats)
                for k, m in models.items()}
    stats = measure.compare_latency({k: (lambda m=d[0]: m(example)) for k, d in deployed.items()},
                                    repeats=repeats, warmup=3, num_threads=1, settle=1,
                                    isolate=True)
    return ({k: 1000 * s.median for k, s in stats.items()},
            {k: d[1] for k, d in deployed.items()}, {k: d for k, d in deployed.items()})


def _float_key(spec: TrialSpec) -> str:
    """Trials that differ only in how they quantize share the float training."""
    fields = {k: v for k, v in spec.resolved().items() if k not in ("task", "params")}
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


def quantization_task(spec: TrialSpec, workdir: Path) -> dict:
    from netshrink.train import TrainConfig, evaluate, fit

    torch.set_num_threads(1)
    params = resolve_quantization(spec.params)
    splits, model, config = build(spec)
    model, train_seconds = _trained_float(spec, model, splits, config, workdir)
    model.eval()
    files = {"float": netshrink.save(model, workdir / "float32.safetensors")}
    accuracy = {"float": evaluate(model, splits.test)[1]}

    ptq = copy.deepcopy(model)
    netshrink.quantize_(ptq, Static(**params["ptq"]), data=splits)
    accuracy["ptq"] = evaluate(ptq, splits.test)[1]
    files["ptq"] = netshrink.save(ptq, workdir / "ptq_int8.safetensors")

    qat = copy.deepcopy(model)
    netshrink.quantize_(qat, QAT(**params["qat"]), data=splits)
    qat_config = TrainConfig.from_dict({**config.to_dict(), "epochs": params["qat_epochs"],
                                        "lr": params["qat_lr"] or config.lr / 10,
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
    repeats = params["latency_repeats"]
    one, runtime_b1, _ = _latency(models, x[:1], repeats, splits)
    batch, runtime_b256, deployed = _latency(models, x[:256], max(5, repeats // 3), splits)
    first = next(m for m in ptq.modules() if hasattr(m, "activation"))
    metrics = {"train_seconds": train_seconds, "qat_seconds": qat_seconds,
               "ptq_activation_bits": first.activation.bits}
    for name in ("float", "ptq", "qat"):
        metrics[f"{name}_top1"] = accuracy[name]
        metrics[f"{name}_latency_ms_b1"] = one[name]
        metrics[f"{name}_latency_ms_b256"] = batch[name]
        metrics[f"{name}_runtime_b1"] = runtime_b1[name]
        metrics[f"{name}_runtime_b256"] = runtime_b256[name]
        metrics[f"{name}_bytes"] = files[name].stat().st_size
        runner, _, note = deployed[name]
        if note:
            metrics[f"{name}_runtime_note"] = note
        elif runner is not models[name]:  # compiled: its accuracy as it runs
            metrics[f"{name}_compiled_top1"] = evaluate(runner, splits.test)[1]
    metrics["qat_fake_top1"] = accuracy["qat_fake"]
    return metrics


TASKS = {"quantization": Task(quantization_task, check_quantization, resolve_quantization,
                              check_model=check_quantization_model)}
