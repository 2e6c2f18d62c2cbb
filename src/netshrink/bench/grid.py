"""Grid files: a YAML mapping whose lists expand to a product of trials, checked before any runs.

    task: train
    data: digits
    model: mlp
    model_args:
      widths: [[64], [256, 256]]     # two choices, each a list value
    train: {epochs: 5, lr: [1.0e-3, 3e-3]}
    seed: [0, 1, 2]

The keys are TrialSpec's (task, model, data, model_args, data_args, params, train, seed). A list
at the top level, or as a value one level inside model_args / data_args / params / train, is a
list of choices: the trials are every combination, in file order. A value that is itself a list
(model widths) is written as a list of one choice: `widths: [[300, 100]]`. Mappings nested
deeper are plain values and never expand. A file may also hold a list of such grids; their
trials are concatenated (e.g. one dense baseline plus a pruned grid), duplicates dropped.

Every trial is checked before any runs: unknown keys, wrong types, empty lists, unknown task,
model or data names, model arguments (each model is built once), training options, seeds, and
the task's own parameter check (the validators the trial itself runs, and layer patterns
matched against the built model). The error names the key. A grid may hold at most
MAX_TRIALS trials (`max_trials=` raises it); the count is the product of its lists' lengths,
computed before anything is expanded.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import math
import os
import types
import typing
from dataclasses import fields

from netshrink import checks
from netshrink.bench import tasks
from netshrink.bench.spec import ARGUMENT_FIELDS, TrialSpec
from netshrink.errors import NetshrinkError
from netshrink.yamlfile import parse_yaml, read_yaml

NAME_FIELDS = ("task", "model", "data")
GRID_KEYS = tuple(f.name for f in fields(TrialSpec))
MAX_TRIALS = 10_000  # a grid larger than this is most likely a mistake; max_trials= allows it


def load_grid(path: str | os.PathLike, max_trials: int = MAX_TRIALS) -> list[TrialSpec]:
    """The checked trials of a grid file."""
    return expand(read_yaml(path), str(path), max_trials)


def parse_grid(text: str, source: str = "grid", max_trials: int = MAX_TRIALS
               ) -> list[TrialSpec]:
    """The checked trials of grid YAML `text`; errors start with `source`."""
    return expand(parse_yaml(text, source), source, max_trials)


def expand(document: object, source: str = "grid", max_trials: int = MAX_TRIALS) -> list[TrialSpec]:
    """The checked trials of a parsed grid (a mapping, or a list of mappings); refused when
    its lists multiply to more than `max_trials` trials, before any is built."""
    checks.positive_integer(max_trials, "max_trials")
    if isinstance(document, dict):
        grids = [(source, document)]
    elif isinstance(document, list) and document:
        grids = [(f"{source}: grid {i + 1}", g) for i, g in enumerate(document)]
    else:
        raise NetshrinkError(
            f"{source}: a grid is a mapping of trial keys ({', '.join(GRID_KEYS)}) or a list "
            f"of such mappings, got {_kind(document)}"
        )
    planned = [(where, _axes(grid, where)) for where, grid in grids]
    total = sum(math.prod(len(choices) for _, choices in axes) for _, axes in planned)
    if total > max_trials:
        raise NetshrinkError(
            f"{source}: the grid's lists multiply to {total:,d} trials, more than the limit of "
            f"{max_trials:,d}; shorten its lists, or raise the limit (netshrink sweep "
            "--max-trials N, expand(..., max_trials=N)) if you mean it"
        )
    trials: dict[str, TrialSpec] = {}
    for where, axes in planned:
        for spec in _combine(axes, where):
            trials.setdefault(spec.trial_id, spec)
    return list(trials.values())


def _axes(grid, where: str) -> list[tuple[tuple[str, ...], list]]:
    """(path, choices) of every key of one grid, checked for shape (nothing expanded)."""
    if not isinstance(grid, dict):
        raise NetshrinkError(f"{where}: expected a mapping of trial keys, got {_kind(grid)}")
    for key in grid:
        if key not in GRID_KEYS:
            close = difflib.get_close_matches(str(key), GRID_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NetshrinkError(
                f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(GRID_KEYS)}"
            )
    for key in ("task", "model"):
        if key not in grid:
            raise NetshrinkError(f"{where}: missing key {key!r}")

    axes: list[tuple[tuple[str, ...], list]] = []  # (path, choices)
    for key, value in grid.items():
        if key in ARGUMENT_FIELDS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise NetshrinkError(
                    f"{where}: {key}: expected a mapping of names to values, got {_kind(value)}"
                )
            axes.append(((key,), [{}]))
            for name, inner in value.items():
                if not isinstance(name, str):
                    raise NetshrinkError(f"{where}: {key}: key {name!r} must be a name (text)")
                axes.append(((key, name), _choices(inner, f"{key}.{name}", where)))
        else:
            choices = _choices(value, key, where)
            for choice in choices:
                _check_scalar(key, choice, where)
            axes.append(((key,), choices))
    return axes


def _combine(axes: list[tuple[tuple[str, ...], list]], where: str) -> list[TrialSpec]:
    """The checked trials of one grid's axes: every combination, in file order."""
    trials = []
    for combination in itertools.product(*(choices for _, choices in axes)):
        values: dict = {}
        for (path, _), choice in zip(axes, combination, strict=True):
            if len(path) == 1:
                values[path[0]] = {} if path[0] in ARGUMENT_FIELDS else choice
            else:
                values[path[0]][path[1]] = choice
        try:
            trials.append(TrialSpec.from_dict(values))
        except NetshrinkError as err:
            raise NetshrinkError(f"{where}: {err}") from None
    check_trials(trials, where)
    return trials


def _choices(value, key: str, where: str) -> list:
    """The choices a grid value stands for: a list is its items, anything else itself."""
    if isinstance(value, list):
        if not value:
            raise NetshrinkError(
                f"{where}: {key}: empty list; give at least one value (a list value is "
                "written as a list of one choice: [[...]])"
            )
        return value
    return [value]


def _check_scalar(key: str, value, where: str) -> None:
    if key == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or \
                not 0 <= value < checks.SEED_LIMIT:
            raise NetshrinkError(
                f"{where}: seed: expected an integer in [0, 2**63) or a list of them, got "
                f"{checks.show(value)}"
            )
    elif not isinstance(value, str) or not value:
        raise NetshrinkError(
            f"{where}: {key}: expected a name or a list of names, got {value!r}"
        )


def _kind(value) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


def check_trials(trials: list[TrialSpec], where: str = "trials") -> None:
    """Check names, training options, data, models and task parameters of `trials`.

    Each distinct data set is loaded and each distinct model built once, so a missing data
    file or a wrong model argument fails here, before any trial runs.
    """
    from netshrink import data, models

    data_names, model_names = data.names(), models.names()
    built: dict[str, object] = {}
    passed: set[str] = set()  # trials differing only in seed need one check of the rest
    splits_of: dict[str, object] = {}
    for spec in trials:
        if spec.data.lower() not in data_names:
            raise NetshrinkError(
                f"{where}: data: unknown data set {spec.data!r}; choose from "
                f"{', '.join(data_names)}"
            )
        if spec.model not in model_names:
            raise NetshrinkError(
                f"{where}: model: unknown model {spec.model!r}; choose from "
                f"{', '.join(model_names)}"
            )
        train_key = "train " + json.dumps(spec.train, sort_keys=True)
        if train_key not in passed:
            _check_train(spec.train, where)
            passed.add(train_key)
        data_key = repr((spec.data, sorted(spec.data_args.items())))
        if data_key not in splits_of:
            splits_of[data_key] = _load_data(spec, where)
        splits = splits_of[data_key]
        model_key = repr((spec.model, sorted(spec.model_args.items()), data_key))
        if model_key not in built:
            try:
                model = models.create(spec.model, input_shape=splits.input_shape,
                                      num_classes=splits.num_classes, **spec.model_args)
            except Exception as err:
                raise NetshrinkError(
                    f"{where}: model_args: cannot build {spec.model} with "
                    f"{spec.model_args}: {err}"
                ) from None
            built[model_key] = model
        task_key = json.dumps([spec.task, spec.params, model_key], sort_keys=True)
        if task_key in passed:
            continue
        try:
            tasks.check(spec)
            tasks.check_model(spec, built[model_key])
        except NetshrinkError as err:
            key = "task" if spec.task not in tasks.names() else "params"
            raise NetshrinkError(f"{where}: {key}: {err}") from None
        passed.add(task_key)


def _load_data(spec: TrialSpec, where: str):
    from netshrink import data

    if "seed" in spec.data_args:
        raise NetshrinkError(f"{where}: data_args.seed: the trial's seed (top-level key seed) "
                             "seeds the validation split")
    try:
        return data.load(spec.data, **spec.data_args)
    except TypeError as err:
        raise NetshrinkError(f"{where}: data_args: {err}") from None
    except NetshrinkError as err:
        key = "data_args" if spec.data_args else "data"
        raise NetshrinkError(f"{where}: {key}: {err}") from None


def _check_train(train: dict, where: str) -> None:
    """Type-check and build the TrainConfig of a trial (the sweep sets seed and device)."""
    from netshrink.train import TrainConfig

    hints = _train_hints()
    if "seed" in train:
        raise NetshrinkError(f"{where}: train.seed: give the seed as the top-level key seed")
    for name, value in train.items():
        if name not in hints:
            close = difflib.get_close_matches(name, hints, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NetshrinkError(
                f"{where}: train.{name}: unknown training option{hint}; known: "
                f"{', '.join(sorted(hints))}"
            )
        if not _fits(value, hints[name]):
            raise NetshrinkError(
                f"{where}: train.{name}: expected {_type_name(hints[name])}, got {value!r}"
            )
    try:
        TrainConfig.from_dict({"device": "cpu", **train})
    except NetshrinkError as err:
        raise NetshrinkError(f"{where}: train: {err}") from None


@functools.cache
def _train_hints() -> dict:
    from netshrink.train import TrainConfig

    return typing.get_type_hints(TrainConfig)


def _fits(value, hint) -> bool:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is bool and isinstance(value, bool):
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if option is str and isinstance(value, str):
            return True
    return False


def _type_name(hint) -> str:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join("null" if o is type(None) else o.__name__ for o in options)
