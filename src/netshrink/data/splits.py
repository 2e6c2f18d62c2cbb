"""Train / validation / test splits as in-memory tensor data sets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, TensorDataset

from netshrink.errors import DataError


@dataclass(frozen=True)
class Splits:
    """A data set cut into train, validation (held out of train, seeded) and test parts."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    input_shape: tuple[int, ...]

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes})"
        )


def holdout(
    x: torch.Tensor, y: torch.Tensor, size: int, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    """Split (x, y) into (rest, held-out `size` examples) by a seeded permutation."""
    n = len(x)
    if not 0 <= size < n:
        raise DataError(f"val_size={size} must be in [0, {n - 1}] for {n} training examples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    keep, held = perm[size:].sort().values, perm[:size].sort().values
    return TensorDataset(x[keep], y[keep]), TensorDataset(x[held], y[held])


def tensors_of(data: Dataset | tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of a TensorDataset, a (x, y) tuple or any map-style Dataset."""
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
    elif isinstance(data, TensorDataset) and len(data.tensors) == 2:
        x, y = data.tensors
    elif isinstance(data, Dataset):
        if len(data) == 0:  # type: ignore[arg-type]
            raise DataError("the data set is empty")
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
    else:
        raise DataError(
            f"expected a Dataset or an (inputs, labels) tuple, got {type(data).__name__}"
        )
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if len(x) != len(y):
        raise DataError(f"{len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError("the data set is empty")
    return x.float(), y.long()


def from_tensors(
    train: Dataset | tuple,
    test: Dataset | tuple | None = None,
    val_size: int = 0,
    seed: int = 0,
    name: str = "user",
    num_classes: int | None = None,
) -> Splits:
    """Splits from user data. Without `test`, 20% of `train` (seeded) becomes the test set."""
    x, y = tensors_of(train)
    if test is None:
        rest, held = holdout(x, y, len(x) // 5, seed=seed + 1)
        x, y = rest.tensors
        test_ds = held
    else:
        test_ds = TensorDataset(*tensors_of(test))
    train_ds, val_ds = holdout(x, y, val_size, seed)
    labels = torch.cat([y, test_ds.tensors[1]])
    if labels.min() < 0:
        raise DataError("labels must be class indices >= 0")
    classes = num_classes or int(labels.max()) + 1
    return Splits(name, train_ds, val_ds, test_ds, classes, tuple(x.shape[1:]))
