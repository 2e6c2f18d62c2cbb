"""Train / validation / test splits as in-memory data sets of (inputs, labels)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from netshrink.data.inputs import (
    Examples,
    Inputs,
    Shape,
    check,
    count,
    describe,
    example_shape,
    labels_of,
    stack,
    standard_dtypes,
    take,
)
from netshrink.errors import DataError


@dataclass(frozen=True)
class Splits:
    """A data set cut into train, validation (held out of train, seeded) and test parts.

    input_shape is the shape of one example's inputs: (C, H, W) for images, (L,) for token
    ids, a tuple of such shapes when the model takes positional inputs (forward(a, b)) and
    {name: shape} when it takes keyword inputs (netshrink.data.inputs.example_shape).
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    input_shape: Shape

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes})"
        )


def holdout(x: Inputs, y: torch.Tensor, size: int, seed: int) -> tuple[Examples, Examples]:
    """Split (x, y) into (rest, held-out `size` examples) by a seeded permutation."""
    n = len(y)
    if not 0 <= size < n:
        raise DataError(f"val_size={size} must be in [0, {n - 1}] for {n} training examples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    keep, held = perm[size:].sort().values, perm[:size].sort().values
    return Examples(take(x, keep), y[keep]), Examples(take(x, held), y[held])


def tensors_of(data: Dataset | tuple) -> tuple[Inputs, torch.Tensor]:
    """(inputs, labels) of an Examples or TensorDataset, an (inputs, labels) tuple or any
    map-style Dataset whose items are (inputs, label). Inputs may be a tensor, a tuple or a
    dict of tensors; floating-point inputs become float32, integer and bool ones keep their
    dtype; labels become int64 (float labels are refused)."""
    if isinstance(data, Examples):
        return data.inputs, data.labels
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
    elif isinstance(data, TensorDataset):
        if len(data.tensors) != 2:
            raise DataError(
                f"a TensorDataset of {len(data.tensors)} tensors is ambiguous; netshrink reads "
                "(inputs, labels). For a model with several inputs use "
                "netshrink.data.Examples((a, b), labels) or Examples({'a': a, 'b': b}, labels)"
            )
        x, y = data.tensors
    elif isinstance(data, Dataset):
        n = len(data)  # type: ignore[arg-type]
        if n == 0:
            raise DataError("the data set is empty")
        items = [data[i] for i in range(n)]
        if not all(isinstance(item, tuple | list) and len(item) >= 2 for item in items[:1]):
            raise DataError("the data set's items must be (inputs, label) pairs, got "
                            f"{type(items[0]).__name__}")
        x = stack([item[0] for item in items])
        y = torch.stack([torch.as_tensor(item[1]) for item in items])
    else:
        raise DataError(
            f"expected a Dataset or an (inputs, labels) tuple, got {type(data).__name__}"
        )
    x = standard_dtypes(check(x))
    y = labels_of(y)
    if count(x) != len(y):
        raise DataError(f"{count(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise DataError("the data set is empty")
    return x, y


def first_inputs(data: Dataset | tuple, examples: int | None = None) -> Inputs:
    """The inputs of the first `examples` examples of `data` (None: all), without reading
    the rest of a lazy Dataset."""
    if examples is not None and isinstance(data, Dataset) and not isinstance(
            data, Examples | TensorDataset):
        data = Subset(data, range(min(examples, len(data))))  # type: ignore[arg-type]
    x, _ = tensors_of(data)
    return x if examples is None else take(x, slice(0, examples))


def from_tensors(
    train: Dataset | tuple,
    test: Dataset | tuple | None = None,
    val_size: int = 0,
    seed: int = 0,
    name: str = "user",
    num_classes: int | None = None,
) -> Splits:
    """Splits from user data. Without `test`, 20% of `train` (seeded) becomes the test set.

    train / test: (inputs, labels) tuples, Examples or Datasets. Inputs may be a tensor, a
    tuple of tensors (the model's positional arguments) or a dict of tensors (its keyword
    arguments); integer inputs (token ids) stay integer. Labels are class indices in
    [0, num_classes) (None: the largest label + 1).
    """
    x, y = tensors_of(train)
    if test is None:
        rest, test_ds = holdout(x, y, len(y) // 5, seed=seed + 1)
        x, y = rest.tensors
    else:
        test_ds = Examples(*tensors_of(test))
        if describe(test_ds.inputs) != describe(x):
            raise DataError(f"test inputs are {describe(test_ds.inputs)} per example but train "
                            f"inputs {describe(x)}; they must match")
    train_ds, val_ds = holdout(x, y, val_size, seed)
    classes = _check_labels(torch.cat([y, test_ds.labels]), num_classes)
    return Splits(name, train_ds, val_ds, test_ds, classes, example_shape(x))


def _check_labels(labels: torch.Tensor, num_classes: int | None) -> int:
    """The number of classes, after checking every label is a class index below it."""
    if int(labels.min()) < 0:
        raise DataError(f"label {int(labels.min())} is not a class index: labels must be "
                        "0, 1, ..., num_classes - 1 (for unlabeled examples in distillation "
                        "see netshrink.distill.transfer_set)")
    if num_classes is None:
        return int(labels.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise DataError(f"num_classes={num_classes!r} must be a positive integer")
    if int(labels.max()) >= num_classes:
        raise DataError(f"label {int(labels.max())} is out of range for num_classes="
                        f"{num_classes}: labels must be 0..{num_classes - 1}; pass the true "
                        "number of classes")
    return num_classes
