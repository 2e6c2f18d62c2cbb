"""Transfer sets: labeled, unlabeled (label -1), both, and classes left out."""

import pytest
import torch

from netshrink.distill.transfer import check_labels, transfer_set
from netshrink.errors import NetshrinkError


def test_omit_classes_removes_only_training_examples(digits):
    t = transfer_set(digits, omit_classes=[3])
    y = t.train.tensors[1]
    assert 3 not in y.tolist()
    assert len(y) == len(digits.train) - int((digits.train.tensors[1] == 3).sum())
    assert t.test is digits.test and t.val is digits.val


def test_unlabeled_and_both(digits):
    x = digits.train.tensors[0]
    only_soft = transfer_set(digits, drop_labels=True)
    assert set(only_soft.train.tensors[1].tolist()) == {-1}
    both = transfer_set(digits, unlabeled=digits.val)
    y = both.train.tensors[1]
    assert len(y) == len(x) + len(digits.val)
    assert int((y == -1).sum()) == len(digits.val)
    assert check_labels(both) == len(x)


def test_bad_transfer_input(digits):
    with pytest.raises(NetshrinkError, match="omit_classes"):
        transfer_set(digits, omit_classes=[10])
    with pytest.raises(NetshrinkError, match="shape"):
        transfer_set(digits, unlabeled=torch.zeros(3, 1, 28, 28))
    bad = transfer_set(digits, drop_labels=True)  # its own label tensor: digits stays intact
    bad.train.tensors[1][0] = -2
    with pytest.raises(NetshrinkError, match="out of range"):
        check_labels(bad)
