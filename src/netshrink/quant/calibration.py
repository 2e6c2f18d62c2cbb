"""Calibration data: example inputs fed through a model so observers can see its activations.

Accepted: a tensor of inputs, a Dataset, a netshrink.data.Splits (its first 2,048 training
examples), or an iterable of batches (tensors, (inputs, labels) tuples, or dicts of keyword
arguments). A batch that does not fit the model is one clear error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink.errors import NetshrinkError

CALIBRATION_BATCH = 256
# A Splits object calibrates on the first examples of its training set, as many as this.
CALIBRATION_EXAMPLES = 2048


def calibration_batches(data, device: torch.device) -> Iterator:
    """Batches of calibration inputs: tensors, or dicts of keyword arguments."""
    from netshrink.data import Splits, tensors_of

    if isinstance(data, Splits):
        data = tensors_of(data.train)[0][:CALIBRATION_EXAMPLES]
    elif isinstance(data, Dataset) and not isinstance(data, Iterable | torch.Tensor):
        data = tensors_of(data)[0]
    if isinstance(data, torch.Tensor):
        if data.dim() == 0 or len(data) == 0:
            raise NetshrinkError("the calibration data is empty; pass example inputs")
        for start in range(0, len(data), CALIBRATION_BATCH):
            yield data[start:start + CALIBRATION_BATCH].to(device)
        return
    if isinstance(data, Dataset):
        if len(data) == 0:  # type: ignore[arg-type]
            raise NetshrinkError("the calibration data set is empty; pass example inputs")
        data = [tensors_of(data)[0]]
    count = 0
    for batch in data:
        if isinstance(batch, tuple | list):
            batch = batch[0]
        if isinstance(batch, dict):
            yield {k: v.to(device) if isinstance(v, torch.Tensor) else v
                   for k, v in batch.items()}
        elif isinstance(batch, torch.Tensor):
            if batch.numel() == 0:
                raise NetshrinkError("a calibration batch is empty")
            yield batch.to(device)
        else:
            raise NetshrinkError(
                f"a calibration batch must be a tensor, an (inputs, labels) pair or a dict, "
                f"not {type(batch).__name__}"
            )
        count += 1
    if count == 0:
        raise NetshrinkError("the calibration data is empty; pass example inputs")


@torch.no_grad()
def run_batches(model: nn.Module, data, device: torch.device) -> int:
    """Feed the calibration batches through `model`; a batch that does not fit is one error."""
    count = 0
    for batch in calibration_batches(data, device):
        try:
            model(**batch) if isinstance(batch, dict) else model(batch)
        except (RuntimeError, TypeError, ValueError, IndexError) as err:
            if isinstance(err, NetshrinkError):
                raise
            shape = {k: tuple(v.shape) for k, v in batch.items() if hasattr(v, "shape")} \
                if isinstance(batch, dict) else tuple(batch.shape)
            raise NetshrinkError(
                f"the calibration data does not fit the model (a batch of shape {shape}): "
                f"{str(err).splitlines()[0]}"
            ) from None
        count += 1
    return count


def check_fits(model: nn.Module, data, device) -> None:
    """Run the first calibration batch through the unchanged model (one clear error)."""
    first = next(iter(calibration_batches(data, device)))
    run_batches(model, [first], device)
