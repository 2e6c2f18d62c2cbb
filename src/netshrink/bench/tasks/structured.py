"""Sweep tasks of structured pruning (netshrink reproduce structured):

    structured_base      train the dense network (optionally with network slimming's BatchNorm
                         L1 penalty) on a subset of the data, and save it
    structured           load a base, remove structure with netshrink or Torch-Pruning (or the
                         controls: unstructured magnitude pruning to the same parameter count,
                         or nothing removed: engine "dense"),
                         fine-tune on the labels (or, with recovery "distill", distil from the
                         dense base through netshrink.distill), measure accuracy, parameters
                         and FLOPs
    structured_latency   load a base, prune it with every arm (the same architecture the
                         accuracy trials got: the criteria are deterministic given the base),
                         and time all of them and the dense net alternately, torch, TorchScript
                         (frozen) and onnxruntime, batch 1 and 64

Bases are named by their trial ids and read from <sweep>/trials/<id>/model.safetensors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from netshrink import checks
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task, distill_config, known_keys, trial_model
from netshrink.errors import NetshrinkError
from netshrink.prune.speedup import RUNTIMES

if TYPE_CHECKING:
    from torch import nn

    from netshrink.data.splits import Splits

ENGINES = ("netshrink", "torch-pruning", "unstructured", "dense")  # dense: nothing removed
BASE_DEFAULTS = {"train_size": None, "test_size": None, "slimming": 0.0}
PRUNE_DEFAULTS = {"engine": "netshrink", "criterion": "l1", "scope": "layerwise",
                  "finetune": {}, "train_size": None, "test_size": None}
RECOVERIES = ("finetune", "distill")  # absent means "finetune": older trials keep their ids
LATENCY_DEFAULTS = {"batches": [1, 64], "threads": 2, "repeats": 20, "settle": 1,
                    "runtimes": list(RUNTIMES), "train_size": None}


def splits_of(spec: TrialSpec, train_size: int | None, test_size: int | None) -> Splits:
    """The spec's data, the training and test sets cut to their first examples if asked."""
    from torch.utils.data import TensorDataset

    from netshrink import data
    from netshrink.data import Splits, tensors_of

    splits = data.load(spec.data, seed=spec.seed, **spec.data_args)
    train, test = splits.train, splits.test
    if train_size:
        train = TensorDataset(*(t[:train_size] for t in tensors_of(train)))
    if test_size:
        test = TensorDataset(*(t[:test_size] for t in tensors_of(test)))
    return Splits(splits.name, train, splits.val, test, splits.num_classes, splits.input_shape)


def _train_config(spec: TrialSpec, extra: dict | None = None):
    from netshrink.train import TrainConfig

    return TrainConfig.from_dict({"device": "cpu", **spec.train, **(extra or {}),
                                  "seed": spec.seed})


def _base_path(workdir: Path, trial_id: str) -> Path:
    return trial_model(workdir, trial_id, "base", "run the bases first (they are the "
                       "reproduction's first stage)")


def _sizes(params: dict) -> None:
    for key in ("train_size", "test_size"):
        if params.get(key) is not None:
            checks.positive_integer(params[key], key)


def check_base(params: dict) -> None:
    known_keys(params, set(BASE_DEFAULTS), "structured_base")
    _sizes(params)
    checks.real(params.get("slimming", 0.0), "slimming", 0)


def base_task(spec: TrialSpec, workdir: Path) -> dict:
    import netshrink
    from netshrink import measure
    from netshrink.prune.slimming import BatchNormSparsity
    from netshrink.train import fit

    p = {**BASE_DEFAULTS, **spec.params}
    splits = splits_of(spec, p["train_size"], p["test_size"])
    netshrink.train.seed_everything(spec.seed)
    model = netshrink.models.create(spec.model, input_shape=splits.input_shape,
                                    num_classes=splits.num_classes, **spec.model_args)
    callbacks = [BatchNormSparsity(p["slimming"])] if p["slimming"] else []
    result = fit(model, splits, _train_config(spec), callbacks, log_csv=workdir / "log.csv",
                 progress=False)
    netshrink.save(model, workdir / "model.safetensors")
    return {"test_accuracy": result.test_accuracy, "train_seconds": result.seconds,
            "parameters": measure.count_parameters(model),
            "flops": measure.flops(model, splits.input_shape)}


def check_prune(params: dict) -> None:
    from netshrink.prune import StructuredConfig
    from netshrink.prune.criteria import CRITERIA
    from netshrink.train import TrainConfig

    known_keys(params, {"base", "sparsity", "recovery", "distill", *PRUNE_DEFAULTS},
               "structured")
    if "base" not in params or "sparsity" not in params:
        raise NetshrinkError("a structured trial needs params.base (a base trial id) and "
                             "params.sparsity")
    if params.get("engine", "netshrink") not in ENGINES:
        raise NetshrinkError(f"engine={params.get('engine')!r} must be one of "
                             f"{', '.join(ENGINES)}")
    if params.get("criterion", "l1") not in CRITERIA:
        raise NetshrinkError(f"criterion={params.get('criterion')!r} must be one of "
                             f"{', '.join(CRITERIA)}")
    checks.text(params["base"], "base")
    StructuredConfig(criterion=params.get("criterion", "l1"), sparsity=params["sparsity"],
                     scope=params.get("scope", "layerwise"))
    _sizes(params)
    TrainConfig.from_dict(dict(checks.mapping(params.get("finetune", {}), "finetune")))
    checks.choice(params.get("recovery", "finetune"), "recovery", RECOVERIES)
    _distill_config(params)


def _distill_config(params: dict):
    """The DistillConfig of a "distill" recovery (refused on a "finetune" one)."""
    given = dict(checks.mapping(params.get("distill", {}), "distill"))
    if given and params.get("recovery", "finetune") != "distill":
        raise NetshrinkError("distill settings need recovery: distill (or drop distill)")
    return distill_config(given, "distill")


def prune_arm(
    model: nn.Module,
    splits: Splits,
    engine: str,
    criterion: str,
    sparsity: float,
    scope: str,
) -> nn.Module:
    """Prune `model` in place as one arm of the comparison; returns what the arm reports."""
    from netshrink.data import tensors_of
    from netshrink.prune import StructuredConfig, prune_
    from netshrink.prune import torch_pruning as tp

    if engine == "dense":  # the control of a fine-tuning budget: the same training, unpruned
        return model
    x, y = tensors_of(splits.train)
    example = x[:2]
    if engine == "netshrink":
        prune_(model, StructuredConfig(criterion=criterion, sparsity=sparsity, scope=scope,
                                       seed=0), (x, y))
    elif engine == "torch-pruning":
        torch.manual_seed(0)
        tp.prune(model, example, sparsity, criterion, global_pruning=scope == "global",
                 data=(x[:256], y[:256]))
    else:  # the control: as many weights as the l1 architecture, left unstructured
        from netshrink import measure
        from netshrink.prune import prunable

        shaped = copy.deepcopy(model)
        prune_(shaped, StructuredConfig(criterion="l1", sparsity=sparsity), (x, y))
        total = measure.count_parameters(model)
        weights = sum(w.numel() for w in prunable(model).values())
        target = measure.count_parameters(shaped) - (total - weights)
        prune_(model, "magnitude", sparsity=1 - target / weights)
    return model


def prune_task(spec: TrialSpec, workdir: Path) -> dict:
    import netshrink
    from netshrink import measure
    from netshrink.train import fit

    check_prune(spec.params)
    p = {**PRUNE_DEFAULTS, **spec.params}
    splits = splits_of(spec, p["train_size"], p["test_size"])
    model = netshrink.load(_base_path(workdir, p["base"]))
    metrics = {"parameters_before": measure.count_parameters(model),
               "flops_before": measure.flops(model, splits.input_shape)}
    prune_arm(model, splits, p["engine"], p["criterion"], p["sparsity"], p["scope"])
    metrics.update(parameters_after=measure.count_nonzero(model)
                   if p["engine"] == "unstructured" else measure.count_parameters(model),
                   flops_after=measure.flops(model, splits.input_shape))
    config = _train_config(spec, p["finetune"])
    if p.get("recovery", "finetune") == "distill":  # the dense base teaches its pruned self
        teacher = netshrink.load(_base_path(workdir, p["base"]))
        result = netshrink.distill(model, teacher, splits, _distill_config(p), config,
                                   log_csv=workdir / "log.csv", progress=False)
    else:
        result = fit(model, splits, config, log_csv=workdir / "log.csv", progress=False)
    metrics.update(test_accuracy=result.test_accuracy, finetune_seconds=result.seconds)
    return metrics  # the accuracy lost is the base trial's test accuracy minus this one


def check_latency(params: dict) -> None:
    known_keys(params, {"base", "arms", "sparsity", *LATENCY_DEFAULTS}, "structured_latency")
    p = {**LATENCY_DEFAULTS, **params}
    for key in ("batches", "runtimes", "arms"):
        if not isinstance(p.get(key, []), list):
            raise NetshrinkError(f"{key}={checks.show(p[key])} must be a list")
    for batch in p["batches"]:
        checks.integer(batch, "batches", 1, 65_536)
    checks.integer(p["threads"], "threads", 1, 256)
    checks.integer(p["repeats"], "repeats", 1, 10_000)
    checks.integer(p["settle"], "settle", 0, 100)
    for runtime in p["runtimes"]:
        checks.choice(runtime, "runtimes", RUNTIMES)
    for arm in params.get("arms", []):
        if not (isinstance(arm, list) and len(arm) == 3 and arm[0] in ENGINES):
            raise NetshrinkError(f"structured_latency: arm {arm!r} must be [engine, "
                                 "criterion, scope]")


def latency_task(spec: TrialSpec, workdir: Path) -> dict:
    """Time the dense base and every arm's pruned architecture, alternately."""
    import netshrink
    from netshrink.prune import squash_
    from netshrink.prune.speedup import latency_rows

    check_latency(spec.params)
    p = {**LATENCY_DEFAULTS, **spec.params}
    splits = splits_of(spec, p["train_size"], None)
    base = netshrink.load(_base_path(workdir, p["base"])).eval()
    models = {"dense": base}
    for engine, criterion, scope in p["arms"]:
        pruned = prune_arm(copy.deepcopy(base), splits, engine, criterion, p["sparsity"], scope)
        models[f"{engine}:{criterion}:{scope}"] = squash_(pruned).eval()
    shape = splits.input_shape
    gen = torch.Generator().manual_seed(spec.seed)
    rows = latency_rows(models, lambda n: torch.rand(n, *shape, generator=gen),
                        tuple(p["batches"]), p["threads"], p["repeats"],
                        runtimes=tuple(p["runtimes"]), settle=p["settle"])
    metrics = {}
    for r in rows:
        key = f"{r['model']}|{r['runtime']}|{r['batch']}"
        metrics[f"{key}|median_ms"] = r["median_ms"]
        metrics[f"{key}|speedup"] = r["speedup"]
    metrics["threads"] = p["threads"]
    metrics["cpu_flags"] = _cpu_flags()
    return metrics


def _cpu_flags() -> str:
    try:
        from netshrink.quant.kernels import cpu_flags

        flags = cpu_flags()
    except Exception:  # not every platform exposes them
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "neon")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni"


def _resolver(defaults: dict):
    def resolve(params: dict) -> dict:
        """The params with the task's defaults filled in (a default written out is the
        same trial)."""
        resolved = {**defaults, **params}
        if resolved.get("recovery") == "finetune":
            del resolved["recovery"]  # the default, left out so older trial ids hold
        return resolved

    return resolve


TASKS = {
    "structured_base": Task(base_task, check_base, _resolver(BASE_DEFAULTS)),
    "structured": Task(prune_task, check_prune, _resolver(PRUNE_DEFAULTS)),
    "structured_latency": Task(latency_task, check_latency, _resolver(LATENCY_DEFAULTS)),
}
