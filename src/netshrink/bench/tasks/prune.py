"""Sweep tasks of pruning: "prune" (one method at one sparsity, at initialization or after
training), "lottery" (a whole ticket search with its controls) and "deletion" (LeCun et al.'s
deletion curves). They record layer collapse as a metric instead of failing, so a sweep over
compressions runs to the end. Built on netshrink.prune's public API."""

from __future__ import annotations

import csv
import functools
import inspect
import io
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink import checks
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task, field_defaults, known_keys
from netshrink.bench.tasks.train import build
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write
from netshrink.train import TrainConfig, evaluate, fit

if TYPE_CHECKING:
    from torch import nn

WHEN = ("init", "trained")
PRUNE_DEFAULTS = {"scope": "global", "when": "init", "options": {}, "layer_sparsity": None,
                  "finetune": {}}
DELETION_DEFAULTS = {"method": "magnitude", "fractions": [0.2, 0.4, 0.6, 0.8], "retrain": {},
                     "options": {}}


def check_prune(params: dict) -> None:
    """Refuse a prune trial's params before the sweep starts (typos, bad targets), with the
    validators the trial runs: its PruneConfig and its fine-tuning TrainConfig."""
    known_keys(params, {"method", "sparsity", "compression", *PRUNE_DEFAULTS}, "prune")
    checks.choice(params.get("when", "init"), "when", WHEN)
    if "method" not in params:
        raise NetshrinkError("a prune trial needs params.method")
    _prune_config(params)
    TrainConfig.from_dict(dict(checks.mapping(params.get("finetune", {}), "finetune")))


def _prune_config(params: dict):
    """The PruneConfig a prune trial runs (its layer patterns not yet matched to a model)."""
    from netshrink.prune import PruneConfig

    return PruneConfig(method=params["method"], sparsity=params.get("sparsity"),
                       compression=params.get("compression"),
                       scope=params.get("scope", "global"),
                       layers=checks.mapping(params.get("layer_sparsity") or {},
                                             "layer_sparsity"),
                       options=checks.mapping(params.get("options", {}), "options"),
                       allow_collapse=True)


def check_prune_model(params: dict, model: nn.Module) -> None:
    """The layer_sparsity patterns must each name a prunable layer of the trial's model."""
    from netshrink.core.patterns import check_patterns
    from netshrink.prune import prunable

    check_patterns(_prune_config(params).layers, prunable(model), "layer_sparsity")


def resolve_prune(params: dict) -> dict:
    """Defaults filled in, the method's options too; the target as a sparsity (compression 10
    and sparsity 0.9 are one trial)."""
    from netshrink.prune import target_sparsity

    out = {**PRUNE_DEFAULTS, **params}
    if "method" in out:
        out["method"] = str(out["method"]).lower()
        out["options"] = {**_method_defaults(out["method"]), **out["options"]}
    try:
        target = target_sparsity(out.get("sparsity"), out.get("compression"))
    except NetshrinkError:
        return out  # refused by check_prune; the id stays that of the params as written
    out.pop("compression", None)
    out["sparsity"] = target
    return out


def _method_defaults(method: str) -> dict:
    """The constructor defaults of pruning method `method` ({} when unknown)."""
    return dict(_constructor_defaults(method))


@functools.cache
def _constructor_defaults(method: str) -> dict:
    from netshrink.prune import METHODS

    if method not in METHODS:
        return {}
    return {p.name: p.default for p in inspect.signature(METHODS[method]).parameters.values()
            if p.default is not p.empty}


def check_lottery(params: dict) -> None:
    _lottery_config(params)


def resolve_lottery(params: dict) -> dict:
    from netshrink.prune import LotteryConfig

    out = {**field_defaults(LotteryConfig), **params}
    out["layer_rates"] = dict(out["layer_rates"] or {})
    return out


def check_deletion(params: dict) -> None:
    from netshrink.prune import target_sparsity
    from netshrink.prune.scores import make

    known_keys(params, set(DELETION_DEFAULTS), "deletion")
    make(checks.text(params.get("method", "magnitude"), "method"),
         **checks.mapping(params.get("options", {}), "options"))
    fractions = params.get("fractions", DELETION_DEFAULTS["fractions"])
    if not isinstance(fractions, list | tuple) or not fractions:
        raise NetshrinkError(f"fractions={checks.show(fractions)} must be a non-empty list of "
                             "sparsities in [0, 1)")
    for fraction in fractions:
        target_sparsity(fraction, None)
    TrainConfig.from_dict(dict(checks.mapping(params.get("retrain", {}), "retrain")))


def resolve_deletion(params: dict) -> dict:
    out = {**DELETION_DEFAULTS, **params}
    out["method"] = str(out["method"]).lower()
    out["options"] = {**_method_defaults(out["method"]), **out["options"]}
    out["fractions"] = [float(f) for f in out["fractions"]]
    return out


def _lottery_config(params: dict):
    from netshrink.prune import LotteryConfig

    params = dict(params)
    for key, default in (("control_rounds", ()), ("controls", ("reinit", "shuffle"))):
        value = params.get(key, default)
        if not isinstance(value, list | tuple):
            raise NetshrinkError(f"{key}={checks.show(value)} must be a list")
        params[key] = tuple(value)
    if "layer_rates" in params:
        params["layer_rates"] = tuple(checks.mapping(params["layer_rates"] or {},
                                                     "layer_rates").items())
    try:
        return LotteryConfig(**params)
    except TypeError as err:
        raise NetshrinkError(f"bad lottery parameter: {err}") from None


def prune_task(spec: TrialSpec, workdir: Path) -> dict:
    """Prune with params["method"] at params["sparsity"|"compression"], then train.

    when="init": prune the initialized network, train it with spec.train (pruning at
    initialization, as SNIP, GraSP and SynFlow). when="trained": train with spec.train, prune,
    fine-tune with spec.train updated by params["finetune"].
    """
    from netshrink.prune import density, prune_, target_sparsity

    params = dict(spec.params)
    check_prune(params)
    splits, model, config = build(spec)
    target = target_sparsity(params.get("sparsity"), params.get("compression"))
    metrics: dict = {"target_sparsity": target}
    if params.get("when", "init") == "trained":
        dense = fit(model, splits, config, log_csv=workdir / "dense.csv", progress=False)
        metrics["dense_test_accuracy"] = dense.test_accuracy
        config = TrainConfig.from_dict({**config.to_dict(), **params.get("finetune", {})})
    start = time.perf_counter()
    mask = prune_(model, params["method"], splits, sparsity=target,
                  scope=params.get("scope", "global"),
                  layer_sparsity=params.get("layer_sparsity"), allow_collapse=True,
                  seed=spec.seed, **params.get("options", {}))
    metrics["prune_seconds"] = time.perf_counter() - start
    metrics["density"] = density(model)
    metrics["compression"] = 1 / max(metrics["density"], 1e-12)
    metrics["collapsed"] = bool(mask.collapsed)
    metrics["collapsed_layers"] = " ".join(mask.collapsed)
    device = next(model.parameters()).device
    metrics["accuracy_after_pruning"] = evaluate(model, splits.test, device)[1]
    result = fit(model, splits, config, log_csv=workdir / "log.csv", progress=False)
    metrics.update(test_accuracy=result.test_accuracy, test_loss=result.test_loss,
                   early_stop_iteration=result.early_stop_iteration,
                   early_stop_test_accuracy=result.early_stop_test_accuracy,
                   train_seconds=result.seconds)
    return metrics


def lottery_task(spec: TrialSpec, workdir: Path) -> dict:
    """A lottery ticket search (netshrink.prune.lottery) with params = LotteryConfig fields.

    Metrics are flat: "r{round}.{arm}.{field}" for every trained network; the rows are also
    written to results.csv in the trial's folder as they finish.
    """
    from netshrink.prune import find_ticket
    from netshrink.prune.lottery import zoo_factory

    config = _lottery_config(spec.params)
    splits, _, train = build(spec)
    rows: list[dict] = []

    def save(result) -> None:
        rows.append(result.to_dict())
        atomic_write(workdir / "results.csv", _csv(rows))

    make = zoo_factory(spec.model, splits, **spec.model_args)
    results = find_ticket(make, splits, replace(train), config, seed=spec.seed, on_result=save)
    metrics = {}
    for result in results:
        prefix = f"r{result.round:02d}.{result.arm}"
        for key, value in result.to_dict().items():
            if key not in ("round", "arm"):
                metrics[f"{prefix}.{key}"] = value
    return metrics


def deletion_task(spec: TrialSpec, workdir: Path) -> dict:
    """Train, then delete weights in order of params["method"]'s score (LeCun et al.'s OBD
    experiment): one-shot (no retraining) and iterative (prune, retrain with spec.train updated
    by params["retrain"]). Metrics: "{mode}.{fraction}.{field}"; rows also in curve.csv."""
    from netshrink.prune.deletion import iterative_curve, measure, one_shot_curve

    params = dict(spec.params)
    check_deletion(params)
    method = params.get("method", "magnitude")
    fractions = [float(f) for f in params.get("fractions", (0.2, 0.4, 0.6, 0.8))]
    options = params.get("options", {})
    splits, model, config = build(spec)
    trained = fit(model, splits, config, log_csv=workdir / "train.csv", progress=False)
    retrain = TrainConfig.from_dict({**config.to_dict(), **params.get("retrain", {})})
    rows = one_shot_curve(model, splits, method, fractions, seed=spec.seed, **options)
    rows += iterative_curve(model, splits, method, fractions, retrain, seed=spec.seed,
                            **options)
    atomic_write(workdir / "curve.csv", _csv([{**r} for r in rows], union=True))
    metrics = {f"trained.{k}": v for k, v in measure(model, splits).items()}
    metrics["trained.iterations"] = trained.iterations
    for row in rows:
        prefix = f"{row['mode']}.{row['fraction']:g}"
        for key, value in row.items():
            if key not in ("mode", "fraction"):
                metrics[f"{prefix}.{key}"] = value
    return metrics


def _csv(rows: list[dict], union: bool = False) -> str:
    fields = list(rows[0])
    if union:
        fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


TASKS = {
    "prune": Task(prune_task, check_prune, resolve_prune, check_model=check_prune_model),
    # zoo_factory initializes with Glorot's normal unless model_args say otherwise
    "lottery": Task(lottery_task, check_lottery, resolve_lottery,
                    model_defaults={"init": "glorot"}),
    "deletion": Task(deletion_task, check_deletion, resolve_deletion),
}
