"""The Torch-Pruning baseline runs the zoo's ResNet the same way (skipped without it)."""

import copy

import pytest
import torch

import netshrink
from netshrink.prune import torch_pruning


@pytest.mark.skipif(not torch_pruning.available(), reason="torch-pruning not installed")
def test_same_ratio_gives_the_same_shapes_as_ours():
    x = torch.rand(2, 1, 8, 8)
    theirs = netshrink.models.create("resnet", (1, 8, 8), 10, depth=8).eval()
    ours = netshrink.models.create("resnet", (1, 8, 8), 10, depth=8).eval()
    torch_pruning.prune(theirs, x, 0.5, "l1")
    netshrink.prune_(ours, netshrink.prune.StructuredConfig(sparsity=0.5), example=x)
    assert theirs(x).shape == (2, 10)
    shapes = [tuple(p.shape) for p in theirs.parameters()]
    assert shapes == [tuple(p.shape) for p in ours.parameters()]


def test_unknown_criterion_is_refused():
    if not torch_pruning.available():
        with pytest.raises(netshrink.NetshrinkError, match="pip install"):
            torch_pruning.importance("l1")
        return
    with pytest.raises(netshrink.NetshrinkError, match="criterion"):
        torch_pruning.importance("hessian2")


@pytest.mark.skipif(not torch_pruning.available(), reason="torch-pruning not installed")
def test_group_l1_keeps_the_channels_torch_pruning_l1_keeps():
    x = torch.rand(2, 1, 8, 8)
    theirs = netshrink.models.create("resnet", (1, 8, 8), 10, depth=8).eval()
    with torch.no_grad():  # BatchNorm scales away from 1, so they count
        for p in theirs.parameters():
            p.mul_(torch.empty_like(p).uniform_(0.2, 3.0))
    ours = copy.deepcopy(theirs)
    torch_pruning.prune(theirs, x, 0.5, "l1")
    netshrink.prune_(ours, netshrink.prune.StructuredConfig(criterion="group_l1",
                                                            sparsity=0.5), example=x)
    for (name, a), b in zip(theirs.named_parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b), name
