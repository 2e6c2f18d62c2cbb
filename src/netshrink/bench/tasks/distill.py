"""Sweep tasks of distillation, run by `netshrink.bench.run_trials`.

    kd_train     train a model alone (a teacher, a baseline, an ensemble member) and save it
    kd_ensemble  evaluate an ensemble of trained models (no training)
    kd_distill   distill a student from trained teachers (one, or several: an ensemble)

A distillation trial names its teachers by their trial ids (content hashes of their specs); it
reads `<sweep>/trials/<id>/model.safetensors`, so the teachers' trials must run first (the
reproduction runs them in an earlier call of run_trials). `<sweep>` is the sweep folder holding
the trial's own folder, or params["sweep_dir"] when given (an executor that runs trials in
private folders, such as Ray, needs it; the folder must then be on a shared file system).
Cached teacher outputs go to `<sweep>/teacher-cache`, shared by every student of the sweep.
Built on netshrink.distill's public API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink import checks
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task
from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from torch import nn

    from netshrink.data.splits import Splits

TRAIN_DEFAULTS = {"member": 0, "jitter": 0, "omit": []}
ENSEMBLE_DEFAULTS = {"sweep_dir": None}
DISTILL_DEFAULTS = {"temperature": 4.0, "alpha": 0.9, "loss": "kl", "cache": True, "jitter": 0,
                    "omit": [], "member": 0, "sweep_dir": None}


def _setup(spec: TrialSpec):
    """(splits, model, TrainConfig): data split by spec.seed; model and batch order seeded by
    spec.seed + 1000 * params["member"], so ensemble members differ on the same data split."""
    from netshrink import data, models
    from netshrink.train import TrainConfig, seed_everything

    splits = data.load(spec.data, seed=spec.seed, **spec.data_args)
    run_seed = spec.seed + 1000 * int(spec.params.get("member", 0))
    seed_everything(run_seed)
    model = models.create(spec.model, input_shape=splits.input_shape,
                          num_classes=splits.num_classes, **spec.model_args)
    config = TrainConfig.from_dict({"device": "cpu", **spec.train, "seed": run_seed})
    return splits, model, config


def _errors(model, dataset, device="cpu", classes=()) -> dict:
    from netshrink.distill.bias import logits_of

    logits, labels = logits_of(model, dataset, device)
    wrong = logits.argmax(1) != labels
    out = {"test_errors": int(wrong.sum()), "test_accuracy": 1 - float(wrong.float().mean())}
    for c in classes:
        out[f"test_errors_class{c}"] = int(wrong[labels == c].sum())
        out[f"test_count_class{c}"] = int((labels == c).sum())
    return out


def _sweep_dir(spec: TrialSpec, workdir: Path) -> Path:
    from netshrink.bench.sweep import sweep_folder

    given = spec.params.get("sweep_dir")
    return Path(given) if given else sweep_folder(workdir)


def _teacher_path(spec: TrialSpec, workdir: Path, trial_id: str) -> Path:
    path = _sweep_dir(spec, workdir) / "trials" / trial_id / "model.safetensors"
    if not path.exists():
        raise NetshrinkError(
            f"teacher trial {trial_id} has no model at {path}; run the teachers' trials first "
            "(in the same sweep folder, or name it with params sweep_dir)"
        )
    return path


def _check_keys(params: dict, allowed: set[str], required: set[str] = frozenset()) -> None:
    unknown, missing = set(params) - allowed, required - set(params)
    if unknown:
        raise NetshrinkError(f"unknown params {sorted(unknown)}; known: {sorted(allowed)}")
    if missing:
        raise NetshrinkError(f"missing params {sorted(missing)}")


def _check_common(params: dict) -> None:
    """member, jitter and omit, checked as the trial reads them."""
    checks.integer(params.get("member", 0), "member", 0, 10_000)
    checks.integer(params.get("jitter", 0), "jitter", 0)
    omit = params.get("omit", [])
    if not isinstance(omit, list):
        raise NetshrinkError(f"omit={checks.show(omit)} must be a list of class indices")
    for c in omit:
        checks.integer(c, "omit", 0)


def _trial_ids(value, key: str) -> None:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise NetshrinkError(f"{key} must name at least one trained model's trial id (a list "
                             f"of ids), got {checks.show(value)}")


def _check_train(params: dict) -> None:
    _check_keys(params, set(TRAIN_DEFAULTS))
    _check_common(params)


def _check_ensemble(params: dict) -> None:
    _check_keys(params, {"members", *ENSEMBLE_DEFAULTS}, {"members"})
    _trial_ids(params["members"], "members")
    _sweep_dir_param(params)


def _check_distill(params: dict) -> None:
    from netshrink.distill import DistillConfig

    _check_keys(params, {"teachers", *DISTILL_DEFAULTS}, {"teachers"})
    _trial_ids(params["teachers"], "teachers")
    _check_common(params)
    checks.boolean(params.get("cache", True), "cache")
    _sweep_dir_param(params)
    DistillConfig(temperature=params.get("temperature", 4.0), alpha=params.get("alpha", 0.9),
                  loss=params.get("loss", "kl"), jitter=params.get("jitter", 0))


def _sweep_dir_param(params: dict) -> None:
    if params.get("sweep_dir") is not None:
        checks.text(params["sweep_dir"], "sweep_dir")


def _resolve(params: dict, defaults: dict) -> dict:
    """Defaults filled in; numbers as the tasks read them (T=20 and T=20.0 are one trial)."""
    out = {**defaults, **params}
    for key in ("temperature", "alpha"):
        if key in out:
            out[key] = float(out[key])
    for key in ("jitter", "member"):
        if key in out:
            out[key] = int(out[key])
    if "omit" in out:
        out["omit"] = [int(c) for c in out["omit"]]
    return out


def _resolve_train(params: dict) -> dict:
    return _resolve(params, TRAIN_DEFAULTS)


def _resolve_ensemble(params: dict) -> dict:
    return _resolve(params, ENSEMBLE_DEFAULTS)


def _resolve_distill(params: dict) -> dict:
    return _resolve(params, DISTILL_DEFAULTS)


def train_alone(spec: TrialSpec, workdir: Path) -> dict:
    """Train a model on hard labels (params: jitter, omit, member); keep early-stopping weights."""
    import netshrink
    from netshrink import measure
    from netshrink.distill import Jitter, transfer_set
    from netshrink.train import fit

    cpu = time.process_time()
    splits, model, config = _setup(spec)
    omit = [int(c) for c in spec.params.get("omit", [])]
    if omit:
        splits = transfer_set(splits, omit_classes=omit)
    jitter = int(spec.params.get("jitter", 0))
    callbacks = [Jitter(jitter)] if jitter else []
    result = fit(model, splits, config, callbacks, log_csv=workdir / "log.csv", progress=False,
                 restore_best=True)
    netshrink.save(model, workdir / "model.safetensors", metadata={"trial": spec.trial_id})
    return {**_errors(model, splits.test, classes=omit),
            "final_test_accuracy": result.test_accuracy,
            "early_stop_iteration": result.early_stop_iteration,
            "parameters": measure.count_parameters(model), "train_seconds": result.seconds,
            "cpu_seconds": time.process_time() - cpu}


def evaluate_ensemble(spec: TrialSpec, workdir: Path) -> dict:
    """Test errors of the ensemble of params["members"] (trial ids): averaged probabilities."""
    import netshrink
    from netshrink import data
    from netshrink.distill import Ensemble

    members = [netshrink.load(_teacher_path(spec, workdir, tid))
               for tid in spec.params["members"]]
    splits = data.load(spec.data, seed=spec.seed, **spec.data_args)
    return {**_errors(Ensemble(members), splits.test), "members": len(members)}


def distill_student(spec: TrialSpec, workdir: Path) -> dict:
    """Distill spec.model from params["teachers"] (trial ids).

    params: temperature, alpha, loss, cache (bool), jitter, omit (classes left out of the
    transfer set; then the bias of each is corrected as in the paper, see `bias_metrics`).
    """
    import netshrink
    from netshrink import measure
    from netshrink.distill import DistillConfig, distill, transfer_set

    cpu = time.process_time()
    p = spec.params
    splits, student, train_config = _setup(spec)
    teachers = [netshrink.load(_teacher_path(spec, workdir, tid)) for tid in p["teachers"]]
    omit = [int(c) for c in p.get("omit", [])]
    transfer = transfer_set(splits, omit_classes=omit) if omit else splits
    cache_dir = str(_sweep_dir(spec, workdir) / "teacher-cache") if p.get("cache", True) else None
    config = DistillConfig(temperature=float(p.get("temperature", 4.0)),
                           alpha=float(p.get("alpha", 0.9)), loss=p.get("loss", "kl"),
                           cache_dir=None if p.get("jitter") else cache_dir,
                           jitter=int(p.get("jitter", 0)))
    result = distill(student, teachers, transfer, config, train_config,
                     log_csv=workdir / "log.csv", progress=False, restore_best=True)
    netshrink.save(student, workdir / "model.safetensors", metadata={"trial": spec.trial_id})
    metrics = {**_errors(student, splits.test, classes=omit),
               "final_test_accuracy": result.test_accuracy,
               "early_stop_iteration": result.early_stop_iteration,
               "parameters": measure.count_parameters(student), "train_seconds": result.seconds,
               "teacher_cache": result.cache, "teacher_seconds": result.teacher_seconds}
    for c in omit:
        metrics.update(bias_metrics(student, splits, c))
    metrics["cpu_seconds"] = time.process_time() - cpu
    return metrics


def bias_metrics(model: nn.Module, splits: Splits, cls: int) -> dict:
    """Errors after raising class `cls`'s bias by the shift that minimizes errors.

    Two choices of the shift: on the validation set (held out, it has the class; ours) and on
    the test set itself (what the paper did: "which optimizes overall performance on the test
    set"; optimistic, reported for comparison).
    """
    from netshrink.distill import best_class_bias
    from netshrink.distill.bias import logits_of

    val_logits, val_labels = logits_of(model, splits.val)
    test_logits, test_labels = logits_of(model, splits.test)
    out = {}
    for source, delta in (("val", best_class_bias(val_logits, val_labels, cls)),
                          ("test", best_class_bias(test_logits, test_labels, cls))):
        shifted = test_logits.clone()
        shifted[:, cls] += delta
        wrong = shifted.argmax(1) != test_labels
        out[f"bias_shift_{source}"] = delta
        out[f"corrected_{source}_test_errors"] = int(wrong.sum())
        out[f"corrected_{source}_errors_class{cls}"] = int(wrong[test_labels == cls].sum())
    return out


TASKS = {
    "kd_train": Task(train_alone, _check_train, _resolve_train),
    "kd_ensemble": Task(evaluate_ensemble, _check_ensemble, _resolve_ensemble),
    "kd_distill": Task(distill_student, _check_distill, _resolve_distill),
}
