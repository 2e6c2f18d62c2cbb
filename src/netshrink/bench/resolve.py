"""A trial's resolved configuration: its spec with every default filled in.

The id of a trial is the hash of this, not of the spec as written, so `epochs: 1.0`, `epochs: 1`
and no `epochs` at all (TrainConfig's default) name one trial, and so do `widths: [1200, 1200]`
and no widths for the mlp. Filled in: the TrainConfig defaults for `train` (device "cpu", the
sweep's; no seed: the trial's seed is the top-level one), the task's parameter defaults for
`params` (`resolve` beside its `check`), the model's defaults for `model_args` (the builder's
signature, and init), the data set's for `data_args` (its validation size). A name that is not
known here (a user's model, data set or task this process has not imported) keeps what was
written; so do params its task refuses (check names the problem).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import TYPE_CHECKING

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from netshrink.bench.spec import TrialSpec

SWEEP_DEVICE = "cpu"  # what a trial trains on unless its train says otherwise
# TrainConfig fields added after trials were named: left out at their default, so that no
# finished trial's id (its folder on disk) changes
LATER_TRAIN_FIELDS = {"bucket": False}


def resolve(spec: TrialSpec) -> dict:
    """The resolved configuration of TrialSpec `spec`, as plain JSON values."""
    from netshrink.bench import tasks
    from netshrink.bench.spec import plain

    try:
        params = tasks.resolve(spec.task, spec.params)
    except (NetshrinkError, TypeError, ValueError, KeyError, AttributeError):
        params = dict(spec.params)  # params the task refuses: its check says why
    return plain({
        "task": spec.task,
        "model": spec.model,
        "data": spec.data.lower(),
        "seed": spec.seed,
        "model_args": {**model_defaults(spec.model), **tasks.model_defaults(spec.task),
                       **spec.model_args},
        "data_args": {**data_defaults(spec.data), **_not_none(spec.data_args)},
        "params": params,
        "train": train_config(spec.train),
    })


def model_defaults(name: str) -> dict:
    from netshrink import models

    return models.defaults(name)


def data_defaults(name: str) -> dict:
    """root None and the data set's validation size (as `netshrink.data.load` fills them)."""
    from netshrink import data

    size = data.DEFAULT_VAL_SIZE.get(name.lower())
    return {"root": None, "val_size": size} if size is not None else {}


def train_config(train: dict) -> dict:
    """TrainConfig's defaults with `train` over them; integers of float fields as floats."""
    defaults, floats = _train_fields()
    out = dict(defaults)
    for key, value in train.items():
        if key in floats and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    out.pop("seed", None)
    for key, default in LATER_TRAIN_FIELDS.items():
        if out.get(key) == default and type(out.get(key)) is type(default):
            del out[key]
    return out


@functools.cache
def _train_fields() -> tuple[dict, frozenset[str]]:
    """TrainConfig's defaults (device: the sweep's) and its float fields, read once."""
    from netshrink.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    defaults["device"] = SWEEP_DEVICE
    return defaults, frozenset(k for k, hint in hints.items() if hint is float)


def _not_none(values: dict) -> dict:
    """`val_size: null` means the default, as in `netshrink.data.load`."""
    return {k: v for k, v in values.items() if v is not None}
