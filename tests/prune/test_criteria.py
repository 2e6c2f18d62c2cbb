"""Structured criteria rank the units they claim to: the filter norm reads only the producer,
the group norm every weight the unit touches."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.prune import StructuredConfig, criteria
from netshrink.prune.graph import channel_groups
from netshrink.prune.structured import call
from tests import user_models


def _two_convs() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].weight[2] = 2.0  # the largest filter ...
        model[3].weight.uniform_(0.5, 1.5)
        model[3].weight[:, 2] = 0  # ... that the next layer ignores
    return model.eval()


def _scores(model, criterion, x):
    groups = [g for g in channel_groups(model, x) if g.fixed is None]
    return criteria.scores(model, groups, criterion, torch.Generator().manual_seed(0))


def test_group_norm_sees_a_channel_its_reader_ignores():
    model, x = _two_convs(), torch.randn(2, 1, 8, 8)
    filter_only = _scores(model, "l1", x)["0"]
    group = _scores(model, "group_l1", x)["0"]
    assert filter_only.argmax() == 2
    assert group.argmin() == 2


def test_group_norm_is_the_sum_over_producer_norm_and_reader():
    model, x = _two_convs(), torch.randn(2, 1, 8, 8)
    expected = (model[0].weight.abs().sum((1, 2, 3)) + model[1].weight.abs()
                + model[3].weight.abs().sum((0, 2, 3)))
    assert torch.allclose(_scores(model, "group_l1", x)["0"], expected.detach())
    squares = (model[0].weight.pow(2).sum((1, 2, 3)) + model[1].weight.pow(2)
               + model[3].weight.pow(2).sum((0, 2, 3)))
    assert torch.allclose(_scores(model, "group_l2", x)["0"], squares.detach().sqrt())


@pytest.mark.parametrize("name", ["residual_cnn", "conv1d", "token_transformer", "two_inputs"])
@pytest.mark.parametrize("criterion", ["group_l1", "group_l2"])
def test_group_criteria_prune_user_models(name, criterion):
    model, x, classes = user_models.build(name)
    result = netshrink.prune_(model.eval(), StructuredConfig(criterion=criterion, sparsity=0.5),
                              example=x)
    assert result.changed
    assert call(model, x).shape[-1] == classes
