"""Calibration data: example inputs fed through a model so observers can see its activations.

Accepted: a netshrink.data.Splits (its first 2,048 training examples), a Dataset, example
inputs (a tensor, a tuple of tensors for a model's positional arguments, or a dict of tensors
for its keyword arguments; cut into batches of 256), or an iterable of batches as a DataLoader
yields them: each a tensor, a dict of keyword arguments, or a list or tuple whose first item
is the inputs (an (inputs, labels) pair; so positional inputs in such an iterable are written
((a, b), labels), as a DataLoader yields them). Inputs of any shape and dtype (token ids stay
integer) are fed as they are; a batch that does not fit the model is one clear error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink.data.inputs import (
    Inputs,
    call,
    check,
    check_finite,
    count,
    describe_batch,
    is_inputs,
    take,
    tensors,
)
from netshrink.data.inputs import to_device as inputs_to
from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from netshrink.data.splits import Splits

CALIBRATION_BATCH = 256
# A Splits object calibrates on the first examples of its training set, as many as this.
CALIBRATION_EXAMPLES = 2048


def calibration_batches(
    data: Inputs | Dataset | Splits | Iterable[Any],
    device: torch.device,
) -> Iterator[Inputs]:
    """Batches of calibration inputs (tensors, tuples or dicts of tensors) on `device`."""
    from netshrink.data import Splits, first_inputs

    if isinstance(data, Splits):
        data = first_inputs(data.train, CALIBRATION_EXAMPLES)
    elif isinstance(data, Dataset) and not isinstance(data, Iterable | torch.Tensor):
        if len(data) == 0:  # type: ignore[arg-type]
            raise NetshrinkError("the calibration data set is empty; pass example inputs")
        data = first_inputs(data)
    elif isinstance(data, tuple) and len(data) == 2 and not is_inputs(data):
        data = first_inputs(data)  # (inputs, labels) with a tuple or dict of inputs
    if is_inputs(data) or isinstance(data, Mapping):
        inputs = _checked(data)
        for start in range(0, count(inputs), CALIBRATION_BATCH):
            yield inputs_to(take(inputs, slice(start, start + CALIBRATION_BATCH)), device)
        return
    if not isinstance(data, Iterable) or isinstance(data, str | tuple):
        raise NetshrinkError(
            f"calibration data must be a Splits, a Dataset, example inputs (a tensor, a tuple "
            f"or a dict of tensors) or an iterable of batches, not {describe_batch(data)}"
        )
    batches = 0
    for batch in data:
        if isinstance(batch, tuple | list):
            if not batch:
                raise NetshrinkError("a calibration batch is an empty sequence")
            batch = batch[0]  # (inputs, labels, ...), as a DataLoader yields it
        yield inputs_to(_checked(batch), device)
        batches += 1
    if batches == 0:
        raise NetshrinkError("the calibration data is empty; pass example inputs")


def _checked(inputs) -> Inputs:
    if not is_inputs(tuple(inputs) if isinstance(inputs, list) else inputs):
        raise NetshrinkError(
            "a calibration batch must be a tensor, a tuple or a dict of tensors (or an "
            f"(inputs, labels) pair in an iterable of batches), not {describe_batch(inputs)}"
        )
    inputs = check(inputs, "calibration inputs")
    if count(inputs) == 0 or any(t.numel() == 0 for t in tensors(inputs)):
        raise NetshrinkError("the calibration data is empty; pass example inputs")
    return check_finite(inputs, "calibration inputs")


@torch.no_grad()
def run_batches(
    model: nn.Module,
    data: Inputs | Dataset | Splits | Iterable[Any],
    device: torch.device,
) -> int:
    """Feed the calibration batches through `model`; a batch that does not fit is one error."""
    done = 0
    for batch in calibration_batches(data, device):
        _run(model, batch)
        done += 1
    return done


@torch.no_grad()
def check_fits(
    model: nn.Module,
    data: Inputs | Dataset | Splits | Iterable[Any],
    device: torch.device,
) -> None:
    """Run the first calibration batch through the unchanged model (one clear error)."""
    _run(model, next(iter(calibration_batches(data, device))))


def _run(model: nn.Module, batch: Inputs) -> None:
    try:
        call(model, batch)
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        if isinstance(err, NetshrinkError):
            raise
        hint = ("; a tuple is the model's positional arguments: pass the inputs alone, not "
                "(inputs, labels)") if isinstance(batch, tuple) else ""
        raise NetshrinkError(
            f"the calibration data does not fit the model (a batch {describe_batch(batch)}): "
            f"{str(err).splitlines()[0]}{hint}"
        ) from None
