"""Model inputs of any shape, and a data set of (inputs, labels) that keeps their dtypes.

An input is what a model's forward takes, batched along dim 0:

- a tensor: `model(x)` (images, features, token ids);
- a tuple of tensors: the positional arguments, `model(*x)` (a forward(self, a, b));
- a dict of tensors: the keyword arguments, `model(**x)` (input_ids=..., attention_mask=...).

Every part of netshrink that feeds a model (training, pruning scores, calibration, distillation,
measurement, export) goes through these functions, so a model that takes token ids or two
tensors is handled like an image classifier. Integer and bool tensors keep their dtype (token
ids stay int64); only floating-point inputs are cast, to float32, as model weights are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink.errors import DataError

Inputs = torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]
# The shape of one example: (C, H, W) for a tensor; a tuple of shapes for positional inputs;
# {name: shape} for keyword inputs.
Shape = tuple[int, ...] | tuple[tuple[int, ...], ...] | dict[str, tuple[int, ...]]


def is_inputs(value: Any) -> bool:
    """Whether `value` is a tensor, or a non-empty tuple or dict of tensors."""
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, tuple) and value:
        return all(isinstance(v, torch.Tensor) for v in value)
    if isinstance(value, Mapping) and value:
        return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    return False


def check(value: Any, what: str = "inputs") -> Inputs:
    """`value` as inputs (a list becomes a tuple, a mapping a dict), or one clear error.

    Every tensor needs a batch dimension, and all the same number of examples along it.
    """
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    if not is_inputs(value):
        raise DataError(
            f"{what} must be a tensor, a tuple of tensors (positional arguments) or a dict of "
            f"tensors (keyword arguments), got {_kind(value)}"
        )
    parts = tensors(value)
    if any(t.dim() == 0 for t in parts):
        raise DataError(f"{what} need a batch dimension (dim 0); got a 0-dimensional tensor")
    sizes = {len(t) for t in parts}
    if len(sizes) != 1:
        raise DataError(f"{what} disagree on the number of examples along dim 0: "
                        f"{describe_batch(value)}")
    return value


def check_finite(inputs: Inputs, what: str = "inputs") -> Inputs:
    """`inputs`, refused when a floating-point tensor holds NaN or infinity: such a value
    turns every loss, gradient and calibrated range it reaches into NaN."""
    for position, t in enumerate(tensors(inputs)):
        if t.is_floating_point() or t.is_complex():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                where = "" if isinstance(inputs, torch.Tensor) else f" (input {position})"
                first = int(bad.reshape(len(t), -1).any(1).nonzero()[0]) if t.dim() else 0
                raise DataError(
                    f"{what}{where} hold {int(bad.sum()):,d} NaN or infinite values (the first "
                    f"in example {first}); clean or drop those examples"
                )
    return inputs


def tensors(inputs: Inputs) -> list[torch.Tensor]:
    """The tensors of `inputs`, in argument order."""
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, dict):
        return list(inputs.values())
    return list(inputs)


def each(inputs: Inputs, fn: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    """`inputs` with `fn` applied to every tensor (the structure kept)."""
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, dict):
        return {k: fn(v) for k, v in inputs.items()}
    return tuple(fn(v) for v in inputs)


def count(inputs: Inputs) -> int:
    """Number of examples (the length of dim 0)."""
    return len(tensors(inputs)[0])


def take(inputs: Inputs, index: int | slice | torch.Tensor) -> Inputs:
    """The examples at `index` (an int keeps the batch dimension out, as tensor[i] does)."""
    if isinstance(index, torch.Tensor):
        index = index.to(tensors(inputs)[0].device)
    return each(inputs, lambda t: t[index])


def to_device(inputs: Inputs, device: torch.device | str, non_blocking: bool = False) -> Inputs:
    """`inputs` on `device` (dtypes kept)."""
    return each(inputs, lambda t: t.to(device, non_blocking=non_blocking))


def arguments(inputs: Inputs) -> tuple[tuple, dict]:
    """(args, kwargs) of the forward call that `inputs` stand for (anything that is not a
    tuple or a mapping, e.g. a tensor or an array, is the one positional argument)."""
    if isinstance(inputs, tuple):
        return inputs, {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    return (inputs,), {}


def call(model: nn.Module | Callable, inputs: Inputs) -> Any:
    """model(x), model(*x) or model(**x), as `inputs` is a tensor, a tuple or a dict."""
    args, kwargs = arguments(inputs)
    return model(*args, **kwargs)


def concat(parts: Sequence[Inputs]) -> Inputs:
    """Inputs of the same structure joined along dim 0."""
    if not parts:
        raise DataError("nothing to concatenate: no inputs")
    first = parts[0]
    for part in parts[1:]:
        if _structure(part) != _structure(first):
            raise DataError(f"inputs of different structure: {describe_batch(first)} and "
                            f"{describe_batch(part)}")
    columns = zip(*(tensors(p) for p in parts), strict=True)
    joined = [torch.cat(list(c)) for c in columns]
    return _rebuild(first, joined)


def stack(examples: Sequence[Any], what: str = "inputs") -> Inputs:
    """One batch from single examples (each a tensor, a tuple or a dict of tensors)."""
    if not examples:
        raise DataError(f"no {what} to stack")
    as_batches = [check(each(_as_tensors(e, what), lambda t: t.unsqueeze(0)), what)
                  for e in examples]
    return concat(as_batches)


def example_shape(inputs: Inputs) -> Shape:
    """The shape of one example: a tuple for a tensor, a tuple of them for positional inputs,
    {name: shape} for keyword inputs (what `Splits.input_shape` holds)."""
    if isinstance(inputs, torch.Tensor):
        return tuple(inputs.shape[1:])
    if isinstance(inputs, dict):
        return {k: tuple(v.shape[1:]) for k, v in inputs.items()}
    return tuple(tuple(v.shape[1:]) for v in inputs)


def filled(shape: Shape, value: float, dtype: torch.dtype = torch.float32,
           device: torch.device | str = "cpu", batch: int = 1) -> Inputs:
    """Inputs of `batch` examples of `shape` (as `example_shape` gives), all equal to `value`."""
    shape = check_shape(shape)
    if isinstance(shape, dict):
        return {k: torch.full((batch, *s), value, dtype=dtype, device=device)
                for k, s in shape.items()}
    if shape and all(isinstance(s, tuple) for s in shape):
        return tuple(torch.full((batch, *s), value, dtype=dtype, device=device) for s in shape)
    return torch.full((batch, *shape), value, dtype=dtype, device=device)


def check_shape(shape: Any, what: str = "input_shape") -> Shape:
    """`shape` as a Shape: a sequence of ints, a sequence of those, or a dict of those."""
    def one(s) -> tuple[int, ...]:
        if isinstance(s, torch.Size):
            return tuple(s)
        if not isinstance(s, Sequence) or isinstance(s, str) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s):
            raise DataError(f"{what}={shape!r} must be a per-example shape such as (1, 28, 28), "
                            "a tuple of them (positional inputs) or a dict of them (keyword "
                            "inputs)")
        return tuple(s)

    if isinstance(shape, Mapping):
        return {str(k): one(s) for k, s in shape.items()}
    if isinstance(shape, Sequence) and not isinstance(shape, str) and shape and all(
            isinstance(s, Sequence) and not isinstance(s, str) for s in shape):
        return tuple(one(s) for s in shape)
    return one(shape)


def is_float(inputs: Inputs) -> bool:
    """Whether every tensor of `inputs` is floating point."""
    return all(t.is_floating_point() for t in tensors(inputs))


def standard_dtypes(inputs: Inputs) -> Inputs:
    """Floating-point tensors as float32 (the dtype of model weights); others unchanged."""
    return each(inputs, lambda t: t.float() if t.is_floating_point() else t)


def equal(a: Inputs, b: Inputs) -> bool:
    """Same structure, shapes, dtypes and values."""
    return _structure(a) == _structure(b) and all(
        x.dtype == y.dtype and torch.equal(x, y.to(x.device))
        for x, y in zip(tensors(a), tensors(b), strict=True))


def describe(inputs: Inputs) -> str:
    """One example's dtypes and shapes, for messages: "int64 (16,)",
    "(float32 (3,), float32 (5,))" or "{input_ids: int64 (16,), attention_mask: int64 (16,)}"."""
    def one(t: torch.Tensor) -> str:
        return f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape[1:])}"

    if isinstance(inputs, torch.Tensor):
        return one(inputs)
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{k}: {one(v)}" for k, v in inputs.items()) + "}"
    return "(" + ", ".join(one(v) for v in inputs) + ")"


def describe_batch(inputs: Any) -> str:
    """The full shapes of a batch (batch dimension included), for messages."""
    if isinstance(inputs, torch.Tensor):
        return f"{str(inputs.dtype).removeprefix('torch.')} {tuple(inputs.shape)}"
    if isinstance(inputs, Mapping):
        return "{" + ", ".join(f"{k}: {describe_batch(v)}" for k, v in inputs.items()) + "}"
    if isinstance(inputs, tuple | list):
        return "(" + ", ".join(describe_batch(v) for v in inputs) + ")"
    return type(inputs).__name__


def labels_of(labels: Any, what: str = "labels") -> torch.Tensor:
    """Labels as a 1-D int64 tensor of class indices; float labels are refused."""
    y = torch.as_tensor(labels)
    if y.is_floating_point() or y.is_complex():
        raise DataError(
            f"{what} are {str(y.dtype).removeprefix('torch.')}; netshrink needs integer class "
            "indices (0, 1, 2, ...), one per example: pass labels.long() if they are whole "
            "numbers, or argmax of one-hot or soft labels"
        )
    if y.dim() != 1:
        raise DataError(f"{what} must be one class index per example (shape (N,)), got shape "
                        f"{tuple(y.shape)}")
    return y.long()


class Examples(Dataset):
    """An in-memory data set of (inputs, labels): inputs of any shape, int64 class labels.

    examples[i] is (one example's inputs, its label), as a DataLoader expects; `inputs` and
    `labels` hold the whole batch. `tensors` is (inputs, labels), as a TensorDataset of
    (x, y) has it, so code written for one keeps working.
    """

    def __init__(self, inputs: Any, labels: Any):
        self.inputs = check(inputs)
        self.labels = labels_of(labels)
        if count(self.inputs) != len(self.labels):
            raise DataError(f"{count(self.inputs)} inputs but {len(self.labels)} labels")

    @property
    def tensors(self) -> tuple[Inputs, torch.Tensor]:
        return self.inputs, self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return take(self.inputs, index), self.labels[index]

    def subset(self, index: torch.Tensor | slice) -> Examples:
        """The examples at `index` (a tensor of positions, or a slice) as a new data set."""
        return Examples(take(self.inputs, index), self.labels[index])

    def __repr__(self) -> str:
        return f"Examples({len(self)}, inputs={describe(self.inputs)})"


def _as_tensors(example: Any, what: str) -> Inputs:
    if isinstance(example, list):
        example = tuple(example)
    if isinstance(example, Mapping):
        return {str(k): torch.as_tensor(v) for k, v in example.items()}
    if isinstance(example, tuple):
        return tuple(torch.as_tensor(v) for v in example)
    try:
        return torch.as_tensor(example)
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"an example's {what} is a {type(example).__name__}, not a tensor, a "
                        "tuple or a dict of tensors") from None


def _structure(inputs: Inputs):
    if isinstance(inputs, torch.Tensor):
        return "tensor"
    if isinstance(inputs, dict):
        return tuple(inputs)
    return len(inputs)


def _rebuild(like: Inputs, parts: list[torch.Tensor]) -> Inputs:
    if isinstance(like, torch.Tensor):
        return parts[0]
    if isinstance(like, dict):
        return dict(zip(like, parts, strict=True))
    return tuple(parts)


def _kind(value: Any) -> str:
    if isinstance(value, tuple | dict):
        if not value:
            return f"an empty {type(value).__name__}"
        items = value.values() if isinstance(value, dict) else value
        inner = sorted({type(v).__name__ for v in items})
        return f"a {type(value).__name__} of {', '.join(inner)}"
    return f"a {type(value).__name__}"
