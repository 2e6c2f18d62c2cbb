"""Data sets as train / validation / test splits: Fashion-MNIST, MNIST, scikit-learn digits, yours.

    splits = netshrink.data.load("fashion-mnist", val_size=5000, seed=0)

Images are float32 in [0, 1] with shape (N, 1, H, W); labels are int64 class indices. The
validation set is held out of the training set by a seeded permutation (the Lottery Ticket paper
holds out 5,000 training images for early stopping). Each split is an `Examples` data set of
(inputs, labels); your own inputs may be a tensor (token ids stay int64), a tuple or a dict of
tensors (see netshrink.data.inputs).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from netshrink import checks
from netshrink.data import catalog, idx, inputs
from netshrink.data.catalog import SOURCES, download
from netshrink.data.inputs import Examples
from netshrink.data.splits import Splits, first_inputs, from_tensors, holdout, tensors_of
from netshrink.errors import DataError

__all__ = ["Examples", "Splits", "download", "first_inputs", "from_tensors", "inputs", "load",
           "names", "tensors_of"]

DEFAULT_VAL_SIZE = {"mnist": 5000, "fashion-mnist": 5000, "digits": 200}


def names() -> list[str]:
    """The names `load` accepts."""
    return sorted([*SOURCES, "digits"])


def load(
    name: str,
    root: str | os.PathLike | None = None,
    val_size: int | None = None,
    seed: int = 0,
) -> Splits:
    """Train / validation / test splits of a named data set.

    `val_size` examples are held out of the training set by a permutation seeded with `seed`
    (None: 5,000 for MNIST and Fashion-MNIST, 200 for digits). The test set never changes.
    """
    if not isinstance(name, str):
        raise DataError(f"data set name must be a string, got {type(name).__name__}")
    if root is not None and (not isinstance(root, str | os.PathLike) or not Path(root).is_dir()):
        raise DataError(f"root={str(root)[:80]!r} (--data-root) is not a folder; give the folder "
                        "that holds the data set's files, or leave it out")
    checks.seed(seed)
    key = name.lower()
    if key == "digits":
        x_train, y_train, x_test, y_test, classes = _digits()
    elif key in SOURCES:
        x_train, y_train, x_test, y_test = _idx_dataset(key, root)
        classes = len(SOURCES[key].classes)
    else:
        raise DataError(f"unknown data set {name!r}; choose from {', '.join(names())}")
    size = DEFAULT_VAL_SIZE[key] if val_size is None else val_size
    if not isinstance(size, int) or isinstance(size, bool):
        raise DataError(f"val_size must be an integer, got {size!r}")
    train, val = holdout(x_train, y_train, size, seed)
    test = Examples(x_test.clone(), y_test.clone())  # the cached tensors stay untouched
    return Splits(key, train, val, test, classes,
                  tuple(x_train.shape[1:]))


def _idx_dataset(name: str, root) -> tuple[torch.Tensor, ...]:
    files = catalog.locate(name, root)
    stamp = tuple((stem, str(p), p.stat().st_size, p.stat().st_mtime_ns)
                  for stem, p in sorted(files.items()))
    return _decode(name, stamp)


@functools.lru_cache(maxsize=4)
def _decode(name: str, stamp: tuple) -> tuple[torch.Tensor, ...]:
    """Verified tensors of the files `stamp` names (cached per process, keyed by size and
    modification time, so a changed file is read and checked again)."""
    arrays = {}
    for stem, path_text, _, _ in stamp:
        path = Path(path_text)
        content = catalog.read_verified(name, path, stem)
        arrays[stem] = idx.parse(content, 3 if "images" in stem else 1, source=str(path))
    out = []
    for part in ("train", "t10k"):
        images, labels = arrays[f"{part}-images-idx3-ubyte"], arrays[f"{part}-labels-idx1-ubyte"]
        idx.check_pair(images, labels, len(SOURCES[name].classes), source=f"{name} {part}")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        out += [x, torch.from_numpy(labels.astype(np.int64))]
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple:
    """scikit-learn's 8x8 digits (1,797 images, shipped inside the package); fixed 20% test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = holdout(x, y, len(x) // 5, seed=12345)
    return (*train.tensors, *test.tensors, 10)
