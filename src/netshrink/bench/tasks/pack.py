"""The sweep task "deep_compression": Deep Compression's pipeline on one model, data set and
seed, stage by stage (Han, Mao and Dally 2016).

Train dense; then for each setting in params["settings"] (in order, each starting from the
previous one's pruned model, so a sparser setting costs only its extra rounds): prune by
magnitude, layer by layer, to the setting's per-layer densities in `rounds` rounds (each
layer's density shrinking geometrically), retraining after each (params["retrain"]); write the
pruned model as a .nsz file without entropy coding (relative indices and float32 values);
share each layer's weights (netshrink.pack.share_, the setting's bits), fine-tune the centroids
(params["finetune"]); write it without entropy coding (fixed-width indices), then entropy
coded (ANS, and Huffman for comparison). Every training keeps its early-stopping weights (the
lowest validation loss). Every accuracy is that of the model loaded back from its file; every
size is the file's size in bytes. Built on the methods' public API.

A setting with "distill" (netshrink.distill.DistillConfig fields) retrains and fine-tunes by
distillation from the dense model of the same trial (Hinton et al.'s soft targets beside the
labels) instead of the labels alone: netshrink's combination, not the paper's protocol.
With params["teacher"] ({"model": a zoo name, "epochs": N}) the teacher is that model instead,
trained first on the same data, seed and training options for N epochs: a stronger network
than the one compressed (a CNN teaching an MLP) brings what self-distillation cannot.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

import netshrink
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task, distill_config, known_keys
from netshrink.bench.tasks.train import build
from netshrink.errors import NetshrinkError
from netshrink.pack import ShareConfig, baselines, nsz, share_
from netshrink.train import TrainConfig, evaluate, fit

DEFAULTS = {"settings": [], "retrain": {}, "finetune": {}}
OPTIONAL = ("teacher",)  # optional, not a default, so that the trials without it keep their ids
TEACHER_KEYS = {"model", "epochs"}
SETTING_KEYS = {"name", "density", "bits", "rounds", "distill"}


def check_deep_compression(params: dict) -> None:
    """Refuse unknown keys, bad densities, bit widths and training options before the sweep."""
    known_keys(params, {*DEFAULTS, *OPTIONAL}, "deep_compression")
    if "teacher" in params:
        _check_teacher(params["teacher"])
    settings = params.get("settings")
    if not isinstance(settings, list) or not settings:
        raise NetshrinkError("params.settings must be a non-empty list of settings")
    for i, s in enumerate(settings):
        if not isinstance(s, dict):
            raise NetshrinkError(f"params.settings[{i}] must be a mapping")
        known_keys(s, SETTING_KEYS, f"deep_compression settings[{i}]")
        if not isinstance(s.get("name"), str) or not s["name"].isidentifier():
            raise NetshrinkError(f"params.settings[{i}].name must be a short identifier")
        density = s.get("density")
        if not isinstance(density, dict) or not density or not all(
                isinstance(v, int | float) and 0 < v <= 1 for v in density.values()):
            raise NetshrinkError(f"params.settings[{i}].density must map layer patterns to "
                                 "densities in (0, 1]")
        bits = s.get("bits")
        if not isinstance(bits, dict) or not bits:
            raise NetshrinkError(f"params.settings[{i}].bits must map layer patterns to bits")
        ShareConfig(layers=bits)
        if not isinstance(s.get("rounds"), int) or s["rounds"] < 1:
            raise NetshrinkError(f"params.settings[{i}].rounds must be a positive integer")
        if "distill" in s:
            distill_config(s["distill"], f"params.settings[{i}].distill")
    for key in ("retrain", "finetune"):
        TrainConfig.from_dict(dict(params.get(key, {})))


def _check_teacher(teacher: object) -> None:
    from netshrink import models

    if not isinstance(teacher, dict):
        raise NetshrinkError("params.teacher must be a mapping {model: a zoo name, epochs: N}")
    known_keys(teacher, TEACHER_KEYS, "deep_compression teacher")
    if teacher.get("model") not in models.names():
        raise NetshrinkError(f"params.teacher.model must be one of {', '.join(models.names())}, "
                             f"not {teacher.get('model')!r}")
    epochs = teacher.get("epochs")
    if not isinstance(epochs, int | float) or isinstance(epochs, bool) or epochs <= 0:
        raise NetshrinkError(f"params.teacher.epochs must be a positive number, not {epochs!r}")


def _train_teacher(spec: TrialSpec, given: dict, splits, config: TrainConfig, workdir: Path):
    """The trial's teacher: the named zoo model trained on the trial's data and seed."""
    from netshrink import models
    from netshrink.train import seed_everything

    seed_everything(spec.seed)
    teacher = models.create(given["model"], input_shape=splits.input_shape,
                            num_classes=splits.num_classes)
    fit(teacher, splits, TrainConfig.from_dict({**config.to_dict(), "epochs": given["epochs"]}),
        log_csv=workdir / "teacher.csv", progress=False, restore_best=True)
    return teacher.eval()


def _retrain(model, splits, config, log_csv: Path, teacher=None, distill=None) -> None:
    """Train on the labels, or (a setting with distill) from the dense teacher as well."""
    if distill is None:
        fit(model, splits, config, log_csv=log_csv, progress=False, restore_best=True)
    else:
        netshrink.distill(model, teacher, splits, distill, config, log_csv=log_csv,
                          progress=False, restore_best=True)


def resolve_deep_compression(params: dict) -> dict:
    return {**DEFAULTS, **params}


def _densities(model, patterns: dict) -> dict[str, float]:
    """{weight name: target density} of every prunable weight a pattern names."""
    from netshrink.core.patterns import check_patterns, last_match

    names = list(netshrink.prune.prunable(model))
    check_patterns(patterns, names, "density")
    return {n: float(last_match(n, patterns)) for n in names
            if last_match(n, patterns) is not None}


def _prune_rounds(model, splits, targets: dict[str, float], rounds: int, retrain,
                  workdir: Path, tag: str, teacher=None, distill=None) -> None:
    start = {n: float(keep.float().mean()) for n, keep in netshrink.prune.current_mask(model)
             .items()}
    for r in range(1, rounds + 1):
        layers = {name: 1 - d for name, d in start.items()}  # layers left out stay as they are
        for name, target in targets.items():
            begin = start.get(name, 1.0)
            layers[name] = 1 - begin * (target / begin) ** (r / rounds)
        netshrink.prune_(model, "magnitude", sparsity=0.0, scope="layerwise", layers=layers)
        _retrain(model, splits, retrain, workdir / f"{tag}_round{r}.csv", teacher, distill)


def _file_stage(model, path: Path, coder: str, splits) -> tuple[int, float]:
    """(bytes, test accuracy of the model loaded back from the file)."""
    nsz.save(model, path, coder=coder)
    loaded = netshrink.load(path)
    return path.stat().st_size, evaluate(loaded, splits.test)[1]


def deep_compression_task(spec: TrialSpec, workdir: Path) -> dict:
    torch.set_num_threads(1)
    params = resolve_deep_compression(spec.params)
    check_deep_compression(params)
    splits, model, config = build(spec)
    retrain = TrainConfig.from_dict({**config.to_dict(), **params["retrain"]})
    finetune = TrainConfig.from_dict({**config.to_dict(), **params["finetune"]})
    start = time.perf_counter()
    fit(model, splits, config, log_csv=workdir / "dense.csv", progress=False, restore_best=True)
    dense_file = netshrink.save(model, workdir / "dense.safetensors", sparse=False)
    metrics: dict = {"dense_bytes": dense_file.stat().st_size,
                     "dense_accuracy": evaluate(netshrink.load(dense_file), splits.test)[1],
                     "weights": sum(w.numel() for w in netshrink.prune.prunable(model).values())}
    teacher = None
    if any("distill" in s for s in params["settings"]):
        if "teacher" in params:
            teacher = _train_teacher(spec, params["teacher"], splits, config, workdir)
            metrics["teacher_accuracy"] = evaluate(teacher, splits.test)[1]
        else:
            teacher = copy.deepcopy(model).eval()
    for setting in params["settings"]:
        tag = setting["name"]
        distill = distill_config(setting["distill"], tag) if "distill" in setting else None
        _prune_rounds(model, splits, _densities(model, setting["density"]), setting["rounds"],
                      retrain, workdir, tag, teacher, distill)
        metrics[f"{tag}_density"] = netshrink.prune.density(model)
        metrics[f"{tag}_pruned_bytes"], metrics[f"{tag}_pruned_accuracy"] = _file_stage(
            model, workdir / f"{tag}_pruned.nsz", "bits", splits)
        shared = copy.deepcopy(model)
        report = share_(shared, ShareConfig(bits=8, layers=setting["bits"]))
        metrics[f"{tag}_clusters"] = " ".join(str(r.clusters) for r in report.layers)
        metrics[f"{tag}_shared_untuned_accuracy"] = evaluate(shared, splits.test)[1]
        _retrain(shared, splits, finetune, workdir / f"{tag}_finetune.csv", teacher, distill)
        for stage, coder in (("shared", "bits"), ("huffman", "huffman"), ("coded", "ans")):
            metrics[f"{tag}_{stage}_bytes"], metrics[f"{tag}_{stage}_accuracy"] = _file_stage(
                shared, workdir / f"{tag}_{stage}.nsz", coder, splits)
        for key, value in baselines.int8_baselines(shared).items():
            metrics[f"{tag}_{key.replace('+', '_')}_bytes"] = value
    metrics["seconds"] = time.perf_counter() - start
    return metrics


def deep_compression_in(spec: TrialSpec, folder: Path) -> dict:
    """One deep_compression trial in folder/<data>-seed<seed>, outside a sweep (the
    benchmarks' reruns): its metrics with data and seed, read back from result.json when that
    trial finished earlier."""
    import json

    from netshrink.fileio import atomic_write

    work = Path(folder) / f"{spec.data}-seed{spec.seed}"
    if (work / "result.json").exists():  # finished earlier: read back, not rerun
        return json.loads((work / "result.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    row = {"data": spec.data, "seed": spec.seed, **deep_compression_task(spec, work)}
    atomic_write(work / "result.json", json.dumps(row, indent=2) + "\n")
    return row


TASKS = {"deep_compression": Task(deep_compression_task, check_deep_compression,
                                  resolve_deep_compression)}
