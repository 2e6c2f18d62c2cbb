"""The trial tasks: what a trial of each kind does, found by name.

A task is `run(spec: TrialSpec, workdir: Path) -> dict` returning flat metrics (numbers,
strings, None), with two optional companions that take the trial's params:

- `check(params)` raises NetshrinkError for parameters the task cannot run; a sweep calls it on
  every trial before any trial runs, so a typo in a grid fails in a second, not after an hour;
- `resolve(params)` returns the params with the task's defaults filled in; a trial's id is the
  hash of its resolved configuration, so writing a default explicitly names the same trial;
- `check_model(params, model)` checks what needs the model (layer name patterns); the sweep
  builds each model of a grid once and calls it on every trial, before any trial runs.

The built-in tasks are listed in BUILTIN, name -> the module whose TASKS table holds them; a
module is imported when one of its tasks is first asked for, never as a side effect of
importing something else. These modules use the methods' public API only (netshrink.prune,
netshrink.quant, netshrink.distill), which never import this package.

A user's own task joins with `@netshrink.bench.task(name, check=None, resolve=None)`. Workers
(process pool, Ray) find it by importing the module that defined it, so define tasks at the
top level of an importable module (a task defined in a notebook runs with executor="serial").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from netshrink.bench.spec import TrialSpec
from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from torch import nn

    from netshrink.distill.config import DistillConfig

Run = Callable[[TrialSpec, Path], dict]
Check = Callable[[dict], None]
Resolve = Callable[[dict], dict]
CheckModel = Callable[[dict, "nn.Module"], None]


@dataclass(frozen=True)
class Task:
    """A trial task: `run`, and optionally `check` and `resolve` of its params.

    model_defaults: model arguments the task fills in where the model's own defaults differ
    (the lottery task initializes with Glorot's normal, as the paper), so they resolve too.
    check_model: checks of its params against the trial's model, built once per grid.
    """

    run: Run
    check: Check | None = None
    resolve: Resolve | None = None
    model_defaults: dict = field(default_factory=dict)
    check_model: CheckModel | None = None


BUILTIN = {
    "train": "netshrink.bench.tasks.train",
    "prune": "netshrink.bench.tasks.prune",
    "lottery": "netshrink.bench.tasks.prune",
    "deletion": "netshrink.bench.tasks.prune",
    "quantization": "netshrink.bench.tasks.quant",
    "kd_train": "netshrink.bench.tasks.distill",
    "kd_ensemble": "netshrink.bench.tasks.distill",
    "kd_distill": "netshrink.bench.tasks.distill",
    "structured_base": "netshrink.bench.tasks.structured",
    "structured": "netshrink.bench.tasks.structured",
    "structured_latency": "netshrink.bench.tasks.structured",
    "transformer_distill": "netshrink.bench.tasks.transformer",
    "transformer_prune": "netshrink.bench.tasks.transformer",
    "transformer_gptq": "netshrink.bench.tasks.transformer",
    "transformer_measure": "netshrink.bench.tasks.transformer",
    "deep_compression": "netshrink.bench.tasks.pack",
}
_USER: dict[str, Task] = {}


def task(name: str, check: Check | None = None, resolve: Resolve | None = None
         ) -> Callable[[Run], Run]:
    """Decorator: make `fn(spec, workdir) -> dict` the trial task `name` (a user's own task)."""
    if name in BUILTIN:
        raise NetshrinkError(f"task {name!r} is built in; give your task another name")

    def wrap(fn: Run) -> Run:
        _USER[name] = Task(fn, check, resolve)
        return fn

    return wrap


def get(name: str) -> Task:
    """The task `name`: a built-in one (its module imported now) or a user's registered one."""
    if name in BUILTIN:
        return importlib.import_module(BUILTIN[name]).TASKS[name]
    if name in _USER:
        return _USER[name]
    raise NetshrinkError(f"unknown task {name!r}; choose from {', '.join(names())}")


def names() -> list[str]:
    return sorted({*BUILTIN, *_USER})


def check(spec: TrialSpec) -> None:
    """Raise NetshrinkError if `spec.task` is unknown or refuses `spec.params`."""
    found = get(spec.task)
    if found.check is not None:
        found.check(dict(spec.params))


def check_model(spec: TrialSpec, model: nn.Module) -> None:
    """Raise NetshrinkError if `spec.params` do not fit `model` (the trial's model, built)."""
    found = get(spec.task)
    if found.check_model is not None:
        found.check_model(dict(spec.params), model)


def needs_model(name: str) -> bool:
    """Whether task `name` checks its params against the model (`check_model`)."""
    return get(name).check_model is not None


def resolve(name: str, params: dict) -> dict:
    """`params` with the defaults of task `name` filled in (as given when the task is unknown
    here or has no resolve)."""
    if name not in BUILTIN and name not in _USER:
        return dict(params)
    found = get(name)
    return dict(params) if found.resolve is None else found.resolve(dict(params))


def model_defaults(name: str) -> dict:
    """The model arguments task `name` fills in itself ({} when unknown here)."""
    if name not in BUILTIN and name not in _USER:
        return {}
    return dict(get(name).model_defaults)


def module_of(name: str) -> str:
    """The module that defines task `name` (a worker imports it to find the task)."""
    return BUILTIN[name] if name in BUILTIN else get(name).run.__module__


def ensure(name: str, module: str | None) -> Task:
    """The task `name`, importing `module` first when this process does not know it."""
    if name not in BUILTIN and name not in _USER and module and module not in (
            "__main__", "__mp_main__"):
        importlib.import_module(module)
    return get(name)


def field_defaults(cls) -> dict:
    """The default of every field of dataclass `cls` (for a task's resolve)."""
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def distill_config(given: object, where: str) -> DistillConfig:
    """A task's distillation settings (netshrink.distill.DistillConfig fields) as the config,
    or a NetshrinkError naming `where` and the field."""
    from netshrink.distill import DistillConfig

    if not isinstance(given, dict):
        raise NetshrinkError(f"{where} must be a mapping of DistillConfig fields, e.g. "
                             "{temperature: 4, alpha: 0.9}")
    try:
        return DistillConfig(**given)
    except TypeError as error:
        raise NetshrinkError(f"{where}: {error}; see netshrink.distill.DistillConfig") from None


def trial_model(workdir: Path, trial_id: str, what: str, hint: str) -> Path:
    """The model file an earlier trial of the same sweep wrote (found through
    `sweep.sweep_folder`, so it is the driver's folder on Ray too); refused with `hint` (what
    to run first) when that trial has not written one."""
    from netshrink.bench.sweep import sweep_folder

    path = sweep_folder(workdir) / "trials" / str(trial_id) / "model.safetensors"
    if not path.is_file():
        raise NetshrinkError(f"{what} trial {trial_id} has no model at {path}; {hint}")
    return path


def known_keys(params: dict, known: set[str], what: str) -> None:
    """Refuse parameters a task does not take, naming the ones it does."""
    unknown = set(params) - known
    if unknown:
        raise NetshrinkError(f"unknown {what} parameter {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(known))}")
