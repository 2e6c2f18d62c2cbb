"""The registry of trial tasks: what a trial of each kind does, and the plain "train" task.

A task is `fn(spec: TrialSpec, workdir: Path) -> dict` returning flat metrics (numbers, strings,
None). Pruning, quantization and distillation register their own tasks in their packages.

A task may also register `check(params: dict)`, which raises NetshrinkError for parameters it
cannot run; a sweep calls it on every trial before any trial runs, so a typo in a grid fails in
a second instead of after an hour. Workers (process pool, Ray) find a task by importing the
module that registered it, so register tasks at the top level of an importable module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netshrink.bench.spec import TrialSpec
from netshrink.errors import NetshrinkError

Task = Callable[[TrialSpec, Path], dict]
Check = Callable[[dict], None]
_TASKS: dict[str, Task] = {}
_CHECKS: dict[str, Check] = {}
_PROVIDERS = ("netshrink.prune", "netshrink.quant", "netshrink.distill")


def task(name: str, check: Check | None = None) -> Callable[[Task], Task]:
    """Decorator: register a trial task under `name` (and `check` for its params, optional)."""

    def wrap(fn: Task) -> Task:
        _TASKS[name] = fn
        if check is not None:
            _CHECKS[name] = check
        else:
            _CHECKS.pop(name, None)
        return fn

    return wrap


def get(name: str) -> Task:
    if name not in _TASKS:
        _import_providers()
    if name not in _TASKS:
        raise NetshrinkError(f"unknown task {name!r}; choose from {', '.join(names())}")
    return _TASKS[name]


def check(spec: TrialSpec) -> None:
    """Raise NetshrinkError if `spec.task` is unknown or refuses `spec.params`."""
    get(spec.task)
    if spec.task in _CHECKS:
        _CHECKS[spec.task](dict(spec.params))


def module_of(name: str) -> str:
    """The module that registered task `name` (a worker imports it to find the task)."""
    return get(name).__module__


def ensure(name: str, module: str | None) -> Task:
    """The task `name`, importing `module` first when this process has not registered it."""
    if name not in _TASKS and module and module not in ("__main__", "__mp_main__"):
        import importlib

        importlib.import_module(module)
    return get(name)


def names() -> list[str]:
    _import_providers()
    return sorted(_TASKS)


def _import_providers() -> None:
    import importlib

    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def build(spec: TrialSpec):
    """(splits, model, TrainConfig) for a spec, seeded by spec.seed."""
    from netshrink import data, models
    from netshrink.train import TrainConfig, seed_everything

    splits = data.load(spec.data, seed=spec.seed, **spec.data_args)
    seed_everything(spec.seed)
    model = models.create(spec.model, input_shape=splits.input_shape,
                          num_classes=splits.num_classes, **spec.model_args)
    config = TrainConfig.from_dict({"device": "cpu", **spec.train, "seed": spec.seed})
    return splits, model, config


def _check_train(params: dict) -> None:
    if params:
        raise NetshrinkError(
            f"task 'train' takes no params, got {', '.join(sorted(params))}; training options "
            "go under train:, model options under model_args:"
        )


@task("train", check=_check_train)
def train_task(spec: TrialSpec, workdir: Path) -> dict:
    """Train the model as the spec says; report accuracy, early stopping and time."""
    from netshrink import measure
    from netshrink.train import fit

    splits, model, config = build(spec)
    result = fit(model, splits, config, log_csv=workdir / "log.csv", progress=False)
    return {
        "test_accuracy": result.test_accuracy,
        "early_stop_iteration": result.early_stop_iteration,
        "early_stop_test_accuracy": result.early_stop_test_accuracy,
        "parameters": measure.count_parameters(model),
        "train_seconds": result.seconds,
    }
