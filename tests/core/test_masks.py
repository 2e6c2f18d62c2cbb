"""Masks and deep copies: removing a copy's parametrization leaves the original intact."""

import copy

import pytest
import torch
from torch import nn

import netshrink


def test_squashing_a_deep_copy_keeps_the_original_masked():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    twin = copy.deepcopy(model)
    netshrink.prune.squash_(twin)  # torch's Parametrized class is shared by the copy
    x = torch.randn(3, 6)
    assert torch.equal(model(x), twin(x))
    assert netshrink.prune.density(model) == 0.5
    assert netshrink.prune.current_mask(model).keys() == {"0.weight", "2.weight"}


def test_shared_weights_refuse_a_mask_by_name():
    model = nn.Sequential(nn.Linear(6, 5))
    netshrink.share_(model, bits=2)
    with pytest.raises(netshrink.NetshrinkError, match=r"SharedWeight.*prune before sharing"):
        netshrink.prune.apply_mask(model, {"0.weight": torch.ones(5, 6, dtype=torch.bool)})
