"""The transfer set: the examples the student learns the teacher's outputs on.

It is the training split of a `Splits`, where label -1 marks an unlabeled example (it learns
from the soft targets alone). `transfer_set` builds the variants the paper uses: labeled,
unlabeled, both, and a set with whole classes left out (the "omitted 3" experiment). The
validation and test splits are never changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from netshrink.data import Examples, Splits, tensors_of
from netshrink.data.inputs import (
    check,
    concat,
    count,
    describe,
    standard_dtypes,
    take,
)
from netshrink.distill.losses import UNLABELED
from netshrink.errors import NetshrinkError


def transfer_set(
    splits: Splits,
    unlabeled: torch.Tensor | Dataset | tuple | None = None,
    drop_labels: bool = False,
    omit_classes: Sequence[int] = (),
) -> Splits:
    """A copy of `splits` whose training split is the transfer set.

    omit_classes: leave every training example of these classes out.
    drop_labels: keep the training inputs but mark them unlabeled (soft targets only).
    unlabeled: extra inputs appended as unlabeled examples: a tensor or a dict of tensors,
        or a Dataset or an (inputs, labels) tuple whose labels are ignored (so positional
        inputs go as ((a, b), labels) or Examples((a, b), labels)). They must match the
        training inputs' structure, dtypes and per-example shapes.
    """
    x, y = tensors_of(splits.train)
    for c in omit_classes:
        if not 0 <= int(c) < splits.num_classes:
            raise NetshrinkError(
                f"omit_classes has {c}, not a class of {splits.name} (0..{splits.num_classes - 1})"
            )
    if omit_classes:
        keep = ~torch.isin(y, torch.as_tensor([int(c) for c in omit_classes]))
        x, y = take(x, keep), y[keep]
    if drop_labels:
        y = torch.full_like(y, UNLABELED)
    if unlabeled is not None:
        direct = isinstance(unlabeled, torch.Tensor | dict)
        extra = standard_dtypes(check(unlabeled) if direct else tensors_of(unlabeled)[0])
        if describe(extra) != describe(x):
            raise NetshrinkError(
                f"unlabeled inputs have dtype and shape {describe(extra)} per example, the "
                f"training set {describe(x)}; they must match"
            )
        x = concat([x, extra])
        y = torch.cat([y, torch.full((count(extra),), UNLABELED, dtype=y.dtype)])
    if len(y) == 0:
        raise NetshrinkError("the transfer set is empty")
    return dataclasses.replace(splits, train=Examples(x, y))


def check_labels(splits: Splits) -> int:
    """Refuse labels outside [-1, classes - 1]; return how many training examples are labeled."""
    _, y = tensors_of(splits.train)
    bad = (y < UNLABELED) | (y >= splits.num_classes)
    if bool(bad.any()):
        raise NetshrinkError(
            f"training label {int(y[bad][0])} is out of range: use 0..{splits.num_classes - 1} "
            "for a class or -1 for an unlabeled example"
        )
    return int((y != UNLABELED).sum())
